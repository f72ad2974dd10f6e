"""The ``emit-push`` command.

emit-push demo                      everything on the embedded defaults
emit-push server [--port 8787] ...  the local emit server
emit-push dev APP [--reload]        your app's push endpoint against a local server
emit-push worker APP                your app's handlers as a polling worker
emit-push jobs create|get|list|logs|kill ...
emit-push watch JOB_ID | --space    live progress, status and logs
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence

from .common import CliError
from .dev import add_dev_parser, run_dev
from .jobs import add_jobs_parser, run_jobs
from .watch import add_watch_parser, run_watch
from .worker import add_worker_parser, run_worker

__all__ = ["main"]


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"EMIT_SERVER_{name}", default)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emit-push",
        description="Run emit.run jobs: the local emit server, your app against it, job tools.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    server = sub.add_parser(
        "server",
        help="run the local emit server",
        description="Run the local emit server. Every flag also reads EMIT_SERVER_<FLAG>.",
    )
    server.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    server.add_argument("--port", type=int, default=_env("PORT", "8787"))
    server.add_argument(
        "--db", default=_env("DB"), help="SQLite file, or :memory: (default .emit/dev.sqlite3)"
    )
    server.add_argument("--space-id", default=_env("SPACE_ID"), help="fix the default space id")
    server.add_argument("--worker-key", default=_env("WORKER_KEY"), help="fix the worker key")
    server.add_argument("--producer-key", default=_env("PRODUCER_KEY"), help="fix the producer key")
    server.add_argument("--progress-token", default=_env("PROGRESS_TOKEN"))
    server.add_argument(
        "--api-key",
        action="append",
        default=(_env("API_KEYS") or "").split(),
        metavar="KEY=SCOPES",
        help="an extra key with comma-separated scopes, e.g. emit_ci=jobs:worker,jobs:kill",
    )
    server.add_argument("--rate-limit", default=_env("RATE_LIMIT"), help="requests/s per key")
    server.add_argument("--log-level", default=_env("LOG_LEVEL", "warning"))

    sub.add_parser("demo", help="run the server, an app and a handful of jobs, live")
    add_dev_parser(sub)
    add_worker_parser(sub)
    add_jobs_parser(sub)
    add_watch_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``emit-push`` console script."""
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # here, not at exit: a reader gone away is still ours to handle
    except BrokenPipeError:
        # The reader stopped reading (`emit-push jobs get ID | head`): stop quietly, and
        # exit with the status of a command killed by SIGPIPE (128 + 13), as shells report
        # it for `cat`, `yes` and the rest there. What is left in the buffer goes nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except CliError as exc:
        print(f"emit-push: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command == "server":
        from .server import run_server

        return run_server(args)
    if args.command == "demo":
        from .demo import run_demo

        return asyncio.run(run_demo())
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "dev": run_dev,
        "worker": run_worker,
        "jobs": run_jobs,
        "watch": run_watch,
    }
    return commands[args.command](args)
