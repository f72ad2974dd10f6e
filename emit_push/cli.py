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
import logging
import os
import re
import signal
import socket
import sqlite3
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

from ._cli_common import CliError
from ._cli_dev import add_dev_parser, run_dev
from ._cli_jobs import add_jobs_parser, run_jobs
from ._cli_watch import add_watch_parser, run_watch
from ._cli_worker import add_worker_parser, run_worker

if TYPE_CHECKING:  # the server's imports stay out of `emit-push --help`
    import uvicorn

    from .server import EmitServer, KeySpec, ServerConfig

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
        return _serve(args)
    if args.command == "demo":
        from ._demo import run_demo

        return asyncio.run(run_demo())
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "dev": run_dev,
        "worker": run_worker,
        "jobs": run_jobs,
        "watch": run_watch,
    }
    return commands[args.command](args)


def server_config(args: argparse.Namespace) -> ServerConfig:
    from .server import DEFAULT_DB_PATH, ServerConfig

    rate = None
    if args.rate_limit not in (None, ""):
        try:
            rate = float(args.rate_limit)
        except ValueError:
            raise CliError(f"--rate-limit wants a number, got {args.rate_limit[:20]!r}") from None
        if not rate > 0:  # also NaN
            raise CliError(f"--rate-limit must be greater than 0, got {args.rate_limit[:20]}")
    try:
        return ServerConfig(
            db_path=args.db or DEFAULT_DB_PATH,
            space_id=args.space_id,
            worker_key=args.worker_key,
            producer_key=args.producer_key,
            progress_token=args.progress_token,
            api_keys=[_key_spec(text) for text in args.api_key],
            rate_limit=rate,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None


def check_database(path: str) -> None:
    """Open the database once, as the server will, so that a bad one is a one-line error.

    (Inside uvicorn's lifespan the same failure would print a traceback and exit 3.)
    """
    from .server._store import Store

    try:
        Store(path).close()
    except (RuntimeError, sqlite3.Error, OSError) as exc:
        raise CliError(f"cannot use the database {path}: {exc}") from None


def _key_spec(text: str) -> KeySpec:
    from .server import KeySpec
    from .server._scopes import unknown_scopes

    key, sep, scopes_text = text.partition("=")
    scopes = [s for s in scopes_text.split(",") if s]
    if not sep or not key or not scopes:
        raise CliError(f"--api-key wants KEY=SCOPE[,SCOPE...], got {text.split('=')[0][:6]}...")
    if unknown := unknown_scopes(scopes):
        raise CliError(f"--api-key: unknown scope {unknown[0]!r}")
    return KeySpec(key=key, scopes=scopes)


def bind(host: str, port: int, flag: str = "--port") -> socket.socket:
    """A listening socket; port 0 picks a free one. ``flag`` is the one that picks another."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = f" (another server running? pick another port with {flag})" if port else ""
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def base_url(sock: socket.socket) -> str:
    from .server import API_PREFIX

    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}{API_PREFIX}"


def _serve(args: argparse.Namespace) -> int:
    from .server import EmitServer

    config = server_config(args)
    check_database(config.db_path)
    emit = EmitServer(config)
    sock = bind(args.host, args.port)
    url = base_url(sock)
    server = uvicorn_server(emit, args.log_level, on_started=lambda: _print_banner(emit, url))
    # uvicorn re-raises the signal that stopped it; answering it here makes Ctrl-C a clean exit.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    try:
        server.run(sockets=[sock])  # on uvloop when it is installed
    except RuntimeError as exc:  # e.g. a database of another schema version
        raise CliError(str(exc)) from None
    print("emit local server stopped", flush=True)
    return 0 if server.started else 1


def uvicorn_server(
    emit: EmitServer,
    log_level: str = "warning",
    on_started: Callable[[], None] | None = None,
    on_signal: Callable[[], None] | None = None,
) -> uvicorn.Server:
    """A uvicorn server for the emit server's app; ``on_started`` runs once it listens."""
    return uvicorn_server_for(emit.app, log_level, on_started, lifespan="on", on_signal=on_signal)


def uvicorn_server_for(
    app: Any,
    log_level: str = "warning",
    on_started: Callable[[], None] | None = None,
    *,
    lifespan: Literal["auto", "on", "off"] = "auto",
    on_signal: Callable[[], None] | None = None,
) -> uvicorn.Server:
    """A uvicorn server for any ASGI ``app``, with keys kept out of its logs.

    ``on_signal`` takes SIGINT and SIGTERM instead of the server, which then runs until
    ``should_exit`` is set (and raises no signal again when it stops).
    """
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and on_started is not None:
                on_started()

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if on_signal is None:
                super().handle_exit(sig, frame)
            else:
                on_signal()

    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=log_level in {"trace", "debug", "info"},
        proxy_headers=False,  # a local server: the peer address is the client's
        ws="websockets-sansio",
        lifespan=lifespan,
        # Longer than clients keep idle connections (httpx: 5 s), so that a client never
        # reuses one the server is closing at that moment (the request would be lost).
        timeout_keep_alive=75,
    )
    # After Config, which (re)configures logging: uvicorn logs request paths with their
    # query, and WebSocket clients put their key there (?token=).
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactKeys) for f in logger.filters):
            logger.addFilter(RedactKeys())
    return Server(config)


class RedactKeys(logging.Filter):
    """Blanks ``token=`` values and anything shaped like an emit key in log records.

    Arguments are redacted one by one, so that formatters which unpack them (uvicorn's
    access formatter does) keep working.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_keys(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_keys(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact_keys(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


# Keys look like `emit_` and 20+ URL-safe characters (not `emit_push`, a module path).
_SECRET = re.compile(r"((?:^|[?&;\s])(?:token|api_key|apiKey|key)=)[^&\s\"']*|\bemit_[\w-]{20,}")


def redact_keys(text: str) -> str:
    """``text`` with query-string keys and ``emit_...`` keys replaced by ``[redacted]``."""
    return _SECRET.sub(lambda m: f"{m.group(1)}[redacted]" if m.group(1) else "[redacted]", text)


def _print_banner(emit: EmitServer, url: str) -> None:
    c = emit.credentials
    print(
        f"emit local server  {url}\n"
        f"  database        {emit.config.db_path}\n"
        f"  space id        {c.space_id}\n"
        f"  worker key      {c.worker_key}    (jobs:worker)\n"
        f"  producer key    {c.producer_key}    (jobs:create jobs:read jobs:kill space:admin)\n"
        f"  progress token  {c.progress_token}    (jobs:read:progress)\n"
        f"\n  export EMIT_BASE_URL={url} EMIT_SPACE_ID={c.space_id} EMIT_API_KEY={c.worker_key}\n"
        "\nPress Ctrl-C to stop.",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
