"""One realtime stream on asyncio: connect, read, call back, reconnect; nothing to decide.

Both clients run :class:`StreamRunner`: ``AsyncEmitClient`` as a task on the caller's
loop, ``EmitClient`` on a loop of its own in a background thread (``connection``). What
to do after each close comes from the :class:`~.protocol.Session`. Every wait
(connecting, reading, backing off) races the stop event, so closing takes effect at once.

``websockets`` is imported on first use only: ``import emit_push`` must stay light. A
stream's ``connect`` option (``options.Connect``) opens its sockets instead of
``websockets``' ``connect``: another library's socket is read through
``options.RealtimeSocket``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .._exceptions import ConfigurationError
from .._sdk.config import ClientConfig
from .events import RealtimeClose
from .options import Callbacks
from .protocol import Outcome, RedactingLogger, Session, redact

if TYPE_CHECKING:
    from .options import Connect, RealtimeSocket

__all__ = ["TASK_PREFIX", "Sleep", "StreamRunner"]

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

log = logging.getLogger("emit_push")

TASK_PREFIX = "emit-push realtime"  # names the threads and tasks of every stream
MAX_MESSAGE_BYTES = 16 * 2**20  # a full job's `init` holds its payload and result
_OPEN_TIMEOUT = 10.0
_CLOSE_TIMEOUT = 5.0
_SKIPPED_HEADERS = frozenset({"accept", "user-agent", "content-type"})


class _Stop:
    """The stop event, and a future done when it is set (to race every wait against)."""

    def __init__(self, event: asyncio.Event, name: str) -> None:
        self.event = event
        self.name = name
        self.future = asyncio.ensure_future(event.wait())
        self.future.set_name(f"{name}: stop")

    def is_set(self) -> bool:
        return self.event.is_set()

    async def aclose(self) -> None:
        self.future.cancel()
        await asyncio.wait([self.future])


_STOPPED: Any = object()


async def _race(
    aw: Awaitable[T], stop: _Stop, discard: Callable[[T], Awaitable[None]] | None = None
) -> T:
    """``await aw``, unless ``stop`` comes first: then ``_STOPPED`` (and ``aw`` cancelled)."""
    if stop.is_set():
        if inspect.iscoroutine(aw):
            aw.close()
        return _STOPPED  # type: ignore[no-any-return]
    task = asyncio.ensure_future(aw)
    task.set_name(stop.name)  # every task of a stream says whose it is
    try:
        await asyncio.wait([task, stop.future], return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait([task])
            if not task.cancelled() and task.exception() is None and discard is not None:
                await discard(task.result())  # it finished while being cancelled
    if task.cancelled():
        return _STOPPED  # type: ignore[no-any-return]
    return task.result()


def _close_of(exc: Exception) -> tuple[int, str]:
    """The code and reason of a closed connection: the server's, ours, or 1006 (lost)."""
    frame = getattr(exc, "rcvd", None) or getattr(exc, "sent", None)
    if frame is None:
        return 1006, "connection lost"
    return int(frame.code), str(frame.reason)


def _socket_close(ws: RealtimeSocket, exc: Exception) -> tuple[int, str]:
    """How a socket of a ``connect`` hook closed, as it says (``close_code``,
    ``close_reason``), or 1006 (lost) with the exception's words."""
    code, reason = getattr(ws, "close_code", None), getattr(ws, "close_reason", None)
    if not isinstance(code, int) or isinstance(code, bool):
        return 1006, str(exc) or "connection lost"
    return code, reason if isinstance(reason, str) else ""


def _describe(exc: Exception) -> tuple[str, int | None, bool]:
    """What failed to connect: a message, the HTTP status if any, whether it is transient."""
    from websockets.exceptions import InvalidMessage, InvalidStatus

    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return f"the server answered HTTP {status}", status, status >= 500
    # Another library's refused handshake (a ``connect`` hook's): its status, if it says.
    said = getattr(exc, "status_code", getattr(exc, "status", None))
    if isinstance(said, int) and not isinstance(said, bool) and 100 <= said < 600:
        return f"the server answered HTTP {said}", said, said >= 500
    transient = isinstance(exc, OSError | TimeoutError | InvalidMessage)
    return f"{type(exc).__name__}: {exc}", None, transient


async def _resolve_key(config: ClientConfig) -> str:
    """The client's API key now (a key function is called for every connection)."""
    key = config.api_key
    value: object = key() if callable(key) else key
    if inspect.isawaitable(value):
        value = await value
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError("the api_key function must return a non-empty string")
    return value.strip()


class StreamRunner:
    """Connects a :class:`Session`'s stream until it ends, fails for good, or is stopped."""

    def __init__(
        self,
        session: Session,
        config: ClientConfig,
        callbacks: Callbacks,
        *,
        sleep: Sleep,
        connect_options: dict[str, Any] | None = None,
    ) -> None:
        self.session = session
        self.config = config
        self.callbacks = callbacks
        self.error: Exception | None = None
        """The error that ended the stream, if one did."""
        self._sleep = sleep
        self._connect_options = connect_options or {}

    async def run(self, stop: asyncio.Event) -> None:
        """Run the stream until it ends; ``error`` tells how it ended."""
        stopper = _Stop(stop, f"{TASK_PREFIX} {self.session.label}")
        try:
            while not stop.is_set():
                try:
                    token = await self._token()
                except Exception as exc:  # the key function's error: reported as raised
                    self.error = exc
                    await self._call("on_error", self.callbacks.on_error, exc)
                    return
                outcome = await self._connect_once(token, stopper)
                if outcome is None or stop.is_set():
                    return
                if outcome.error is not None:
                    await self._call("on_error", self.callbacks.on_error, outcome.error)
                if outcome.delay is None:
                    self.error = outcome.error
                    return
                await _race(self._sleep(outcome.delay), stopper)
        finally:
            await stopper.aclose()

    async def _token(self) -> str | None:
        """The token of the next connection: the caller's, the client's key now, or none."""
        options = self.session.options
        if options.use_api_key:
            return await _resolve_key(self.config)
        return options.token and options.token.strip()

    async def _connect_once(self, token: str | None, stop: _Stop) -> Outcome | None:
        """One connection: its outcome, or None when stopped."""
        from websockets.asyncio.client import connect as websockets_connect
        from websockets.exceptions import ConnectionClosed

        self.session.attempt()
        hook = self.session.options.connect
        connect: Connect = hook or websockets_connect
        headers = {k: v for k, v in self.config.headers.items() if k not in _SKIPPED_HEADERS}
        try:
            opening = connect(
                self.session.url(self.config.base_url, token),
                additional_headers=headers,
                user_agent_header=self.config.headers.get("user-agent"),
                open_timeout=_OPEN_TIMEOUT,
                close_timeout=_CLOSE_TIMEOUT,
                max_size=MAX_MESSAGE_BYTES,
                logger=RedactingLogger(logging.getLogger("websockets.client"), token),
                **self._connect_options,
            )
            ws: RealtimeSocket = await _race(opening, stop, discard=_close)
        except Exception as exc:
            detail, status, transient = _describe(exc)
            outcome = self.session.connect_failed(
                redact(detail, token), status=status, transient=transient
            )
            if outcome.error is not None and redact(repr(exc), token) == repr(exc):
                outcome.error.__cause__ = exc  # chained only when it cannot show the token
            return outcome
        if ws is _STOPPED:
            return None
        try:
            self.session.opened()
            await self._call("on_open", self.callbacks.on_open)
            while True:
                try:
                    message = await _race(ws.recv(), stop)
                except ConnectionClosed as exc:
                    code, reason = _close_of(exc)
                    break
                except Exception as exc:
                    if hook is None:  # not a close of websockets' own socket: a bug
                        raise
                    # Another library's socket: an error from recv() is its close.
                    code, reason = _socket_close(ws, exc)
                    break
                if message is _STOPPED:
                    await _close(ws)
                    closed = RealtimeClose(1000, "closed by the client")
                    await self._call("on_close", self.callbacks.on_close, closed)
                    return None
                event = self.session.received(message)
                if event is not None:
                    await self._call("on_event", self.callbacks.on_event, event)
            outcome = self.session.closed(code, reason)
            closed = RealtimeClose(code, reason, outcome.delay)
            await self._call("on_close", self.callbacks.on_close, closed)
            return outcome
        finally:
            await _close(ws)

    async def _call(self, name: str, callback: Callable[..., Any] | None, *args: Any) -> None:
        """Call a hook; what it raises is logged, and the stream goes on."""
        if callback is None:
            return
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("realtime: the %s callback of the %s raised", name, self.session.label)


async def _close(ws: RealtimeSocket) -> None:
    """Close a socket we are done with; one that fails to close is closed enough."""
    try:
        await ws.close()
    except Exception as exc:
        log.debug("realtime: closing a socket failed: %r", exc)
