"""The ``emit-push`` command.

emit-push demo                      everything on the embedded defaults
emit-push server [--port 8787] ...  the local emit server
emit-push dev APP [--reload]        your app's push endpoint against a local server
emit-push worker APP                your app's handlers as a polling worker
emit-push jobs create|get|list|logs|kill ... [--json]
emit-push watch JOB_ID | --space    live progress, status and logs

Exit status: 0 done, 1 failed (a job that did not complete, a refused call, an
unreachable server, an app that would not load, a missing extra), 2 usage (argparse's
errors, a bad flag value, missing settings); see ``EPILOG``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence

from .._extras import MissingExtraError
from .._version import __version__
from .common import EXIT_FAILURE, CliError, require_extra
from .dev import add_dev_parser, run_dev
from .jobs import add_jobs_parser, run_jobs
from .watch import add_watch_parser, run_watch
from .worker import add_worker_parser, run_worker

__all__ = ["EPILOG", "main"]

EPILOG = """\
exit status:
  0    done (a job followed to its end completed)
  1    failed: a job that ended dead or killed (jobs create --wait, watch), a call the
       API refused (4xx, 5xx), a server that cannot be reached, an app that would not
       load, a missing extra (pip install 'emit-push[server]')
  2    usage: a bad command line or flag value, or missing settings (EMIT_SPACE_ID...)
  130  stopped with Ctrl-C while following a job
  141  the reader of the output went away (emit-push jobs list | head -1)

Errors are one line on standard error, starting "emit-push: ". Run
"emit-push COMMAND --help" for a command's flags."""

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
"""uvicorn's log levels (not imported from it: ``--help`` works without the server extra)."""

EXTRAS: dict[str, tuple[str, ...]] = {
    "server": ("starlette", "uvicorn"),
    "dev": ("starlette", "uvicorn"),
    "demo": ("starlette", "uvicorn", "rich"),
    "watch": ("rich",),
}
"""What each command imports of the ``server`` extra, checked before it starts."""


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"EMIT_SERVER_{name}", default)


def _log_level(text: str) -> str:
    level = text.lower()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a log level (choose from {', '.join(LOG_LEVELS)})"
        )
    return level


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emit-push",
        description="Run emit.run jobs: the local emit server, your app against it, job tools.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-V", "--version", action="version", version=f"emit-push {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to run"
    )

    server = sub.add_parser(
        "server",
        help="run the local emit server",
        description=(
            "Run the local emit server in the foreground (Ctrl-C stops it). Every flag also"
            " reads EMIT_SERVER_<FLAG>, e.g. EMIT_SERVER_PORT. Needs the server extra."
        ),
    )
    server.add_argument(
        "--host",
        default=_env("HOST", "127.0.0.1"),
        help="the interface to listen on (default 127.0.0.1: this machine only)",
    )
    server.add_argument(
        "--port",
        type=int,
        default=_env("PORT", "8787"),
        metavar="PORT",
        help="the port (default 8787; 0: any)",
    )
    server.add_argument(
        "--db",
        default=_env("DB"),
        metavar="PATH",
        help="SQLite file, or :memory: (default .emit/dev.sqlite3)",
    )
    server.add_argument(
        "--space-id", default=_env("SPACE_ID"), metavar="ID", help="fix the default space id"
    )
    server.add_argument(
        "--worker-key", default=_env("WORKER_KEY"), metavar="KEY", help="fix the worker key"
    )
    server.add_argument(
        "--producer-key", default=_env("PRODUCER_KEY"), metavar="KEY", help="fix the producer key"
    )
    server.add_argument(
        "--progress-token",
        default=_env("PROGRESS_TOKEN"),
        metavar="TOKEN",
        help="fix the public progress token (jobs:read:progress)",
    )
    server.add_argument(
        "--api-key",
        action="append",
        default=(_env("API_KEYS") or "").split(),
        metavar="KEY=SCOPES",
        help="an extra key with comma-separated scopes, e.g. emit_ci=jobs:worker,jobs:kill",
    )
    server.add_argument(
        "--rate-limit",
        default=_env("RATE_LIMIT"),
        metavar="N",
        help="requests per second per key, then 429 (default: no limit)",
    )
    server.add_argument(
        "--log-level",
        type=_log_level,
        default=_env("LOG_LEVEL", "warning"),
        metavar="LEVEL",
        help=f"uvicorn's log level: {', '.join(LOG_LEVELS)} (default warning; info logs"
        " each request)",
    )

    sub.add_parser(
        "demo",
        help="run the server, an app and a handful of jobs, live",
        description=(
            "Start the local emit server (in memory) and a small app on free loopback ports,"
            " create five jobs (one completes, one fails once and succeeds on its retry, one"
            " reports sub-progress, one is scheduled, one is killed) and show them live."
            " Exit 0 when every job ended as planned. Needs the server extra."
        ),
    )
    add_dev_parser(sub)
    add_worker_parser(sub)
    add_jobs_parser(sub)
    add_watch_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``emit-push`` console script; returns the exit status (see
    ``EPILOG``). argparse's own errors exit 2 by ``SystemExit``, as does ``--help`` 0."""
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
        return exc.code
    except MissingExtraError as exc:  # its one line already starts "emit-push: "
        print(exc, file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command in EXTRAS:
        require_extra(args.command, EXTRAS[args.command])
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
