"""What the commands that serve share: sockets, uvicorn, keys kept out of logs.

``server``, ``dev`` and ``demo`` each bind a socket (a busy port is a one-line error),
run a uvicorn server on it, and check the database first; uvicorn's logs have their
keys blanked (WebSocket clients send theirs in the query string).
"""

from __future__ import annotations

import logging
import re
import socket
import sqlite3
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

from .common import CliError

if TYPE_CHECKING:  # the server's imports stay out of `emit-push --help`
    import uvicorn

    from ..server import EmitServer

__all__ = [
    "RedactKeys",
    "base_url",
    "bind",
    "check_database",
    "redact_keys",
    "uvicorn_server",
    "uvicorn_server_for",
]


def check_database(path: str) -> None:
    """Open the database once, as the server will, so that a bad one is a one-line error.

    (Inside uvicorn's lifespan the same failure would print a traceback and exit 3.)
    """
    from ..server._store import Store

    try:
        Store(path).close()
    except (RuntimeError, sqlite3.Error, OSError) as exc:
        raise CliError(f"cannot use the database {path}: {exc}") from None


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
    from ..server import API_PREFIX

    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}{API_PREFIX}"


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
