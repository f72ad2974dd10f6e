"""What the commands that serve share: sockets, uvicorn, keys kept out of logs.

``server``, ``dev`` and ``demo`` each bind a socket (a busy port is a one-line error),
run a uvicorn server on it, and check the database first; uvicorn's logs have their
keys blanked (WebSocket clients send theirs in the query string).

Every server they run (the emit server and the app's push endpoint alike) closes a
connection that takes longer than ``header_timeout`` to send a request's headers, or
pauses longer than ``body_timeout`` in its body: uvicorn has no such timeout, and a few
clients sending a byte now and then would otherwise hold connections open for good.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import socket
import sqlite3
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .common import CliError

if TYPE_CHECKING:  # the server's imports stay out of `emit-push --help`
    import uvicorn

    from ..server import EmitServer

__all__ = [
    "BODY_TIMEOUT",
    "HEADER_TIMEOUT",
    "RedactKeys",
    "base_url",
    "bind",
    "check_database",
    "http_protocol",
    "redact_keys",
    "uvicorn_server",
    "uvicorn_server_for",
]

HEADER_TIMEOUT = 10.0
"""Seconds from a request's first byte (or the connection's start) to its last header."""
BODY_TIMEOUT = 30.0
"""Seconds a request's body may pause between two reads (while the app waits for it)."""


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
    """A uvicorn server for the emit server's app; ``on_started`` runs once it listens.

    Its read timeouts are the server's (``ServerConfig.header_timeout``, ``body_timeout``).
    """
    return uvicorn_server_for(
        emit.app,
        log_level,
        on_started,
        lifespan="on",
        on_signal=on_signal,
        header_timeout=emit.config.header_timeout,
        body_timeout=emit.config.body_timeout,
    )


def uvicorn_server_for(
    app: Any,
    log_level: str = "warning",
    on_started: Callable[[], None] | None = None,
    *,
    lifespan: Literal["auto", "on", "off"] = "auto",
    on_signal: Callable[[], None] | None = None,
    header_timeout: float = HEADER_TIMEOUT,
    body_timeout: float = BODY_TIMEOUT,
) -> uvicorn.Server:
    """A uvicorn server for any ASGI ``app``, with keys kept out of its logs and read
    timeouts (see the module docstring and :func:`http_protocol`).

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
        http=http_protocol(header_timeout, body_timeout),
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


class _Connection(Protocol):
    """What a read deadline uses of uvicorn's HTTP protocols (both have these)."""

    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    client: tuple[str, int] | None

    @property
    def reading_paused(self) -> bool:
        """Whether the request waits for the server (the app has not taken what came)."""
        ...


class _ReadDeadline:
    """One connection's read timer: armed while the server waits for the client.

    ``headers()`` from the connection's start, or a request's first byte, until the last
    header; ``body()`` again at each piece of the body, until its end (``stop()``). Once
    the request is read the app has it, and uvicorn's keep-alive timeout takes over after
    the answer. The timer does not run out while reading is paused because the app has
    not yet taken what arrived, or the client waits for a ``100 Continue``: then the server
    is the slow one.
    """

    def __init__(self, conn: _Connection, header_timeout: float, body_timeout: float) -> None:
        self._conn = conn
        self._timeouts = {"headers": header_timeout, "body": body_timeout}
        self._timer: asyncio.TimerHandle | None = None
        self.waiting: str | None = None

    def headers(self) -> None:
        self._arm("headers")

    def body(self) -> None:
        self._arm("body")

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self.waiting = None

    def _arm(self, what: str) -> None:
        self.stop()
        self.waiting = what
        self._timer = self._conn.loop.call_later(self._timeouts[what], self._expired, what)

    def _expired(self, what: str) -> None:
        self._timer = None
        transport = self._conn.transport
        if transport.is_closing():
            return
        if what == "body" and self._conn.reading_paused:
            self._arm(what)
            return
        peer = self._conn.client
        client = f"{peer[0]}:{peer[1]} - " if peer else ""
        logging.getLogger("uvicorn.error").info(
            "%sclosing the connection: no complete request %s within %g s",
            client,
            what,
            self._timeouts[what],
        )
        transport.close()


class _Timed:
    """What both timed protocols share: a deadline armed as the connection is made, and
    reading that counts as paused while the app has not taken what arrived."""

    timeouts: tuple[float, float]
    deadline: _ReadDeadline
    cycle: Any
    flow: Any

    @property
    def reading_paused(self) -> bool:
        cycle = self.cycle  # a client sent `Expect: 100-continue`: it waits for us
        return bool(self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue))

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.deadline = _ReadDeadline(self, *self.timeouts)  # type: ignore[arg-type]
        super().connection_made(transport)  # type: ignore[misc]
        self.deadline.headers()


@functools.cache
def http_protocol(header_timeout: float, body_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol with read timeouts: httptools' when installed (as uvicorn
    would pick), else h11's; one class per pair of timeouts."""
    try:
        return _httptools_protocol(header_timeout, body_timeout)
    except ImportError:  # no httptools
        return _h11_protocol(header_timeout, body_timeout)


def _httptools_protocol(header_timeout: float, body_timeout: float) -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class TimedHttpToolsProtocol(_Timed, HttpToolsProtocol):  # type: ignore[misc]
        """httptools tells where a request is: its first byte, last header, body, end."""

        timeouts = (header_timeout, body_timeout)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self.deadline.waiting is None:  # a keep-alive connection's next request
                self.deadline.headers()

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self.deadline.body()

        def on_body(self, body: bytes) -> None:
            super().on_body(body)
            self.deadline.body()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self.deadline.stop()

        def handle_websocket_upgrade(self) -> None:
            self.deadline.stop()  # the WebSocket protocol has its own pings from now on
            super().handle_websocket_upgrade()

        def connection_lost(self, exc: Exception | None) -> None:
            self.deadline.stop()
            super().connection_lost(exc)

    return TimedHttpToolsProtocol


def _h11_protocol(header_timeout: float, body_timeout: float) -> type[asyncio.Protocol]:
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(_Timed, H11Protocol):  # type: ignore[misc]
        """h11 has no callbacks: where the request is follows from the peer's state."""

        timeouts = (header_timeout, body_timeout)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._follow()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._follow()  # a pipelined request may have begun

        def handle_websocket_upgrade(self, event: h11.Request) -> None:
            self.deadline.stop()
            super().handle_websocket_upgrade(event)

        def connection_lost(self, exc: Exception | None) -> None:
            self.deadline.stop()
            super().connection_lost(exc)

        def _follow(self) -> None:
            state = self.conn.their_state
            if self.transport.is_closing() or state not in {h11.IDLE, h11.SEND_BODY}:
                self.deadline.stop()  # read whole (or gone): the app's turn
            elif state is h11.SEND_BODY:
                self.deadline.body()
            elif self.conn.trailing_data[0] and self.deadline.waiting != "headers":
                self.deadline.headers()  # the first bytes of the next request

    return TimedH11Protocol


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
