"""The realtime streams' protocol logic, sans I/O: URLs, cursor, backoff, close decisions.

A :class:`Session` is one stream (a job's or a space's, with its ``StreamOptions``) across
all its connections. The driver (``driver.StreamRunner``) opens sockets and reports what
happened: a message arrived (:meth:`Session.received`), the socket closed
(:meth:`Session.closed`), no socket could be opened (:meth:`Session.connect_failed`). The
session answers with an :class:`Outcome`: the error to report, if any, and whether to
reconnect and after how long.

Close codes (contract §8): the job stream ends with 1000 after a terminal event; 4401 (bad
token), 4403 (missing scope, other space) and 4404 (unknown job) are permanent, as is any
other 44xx but 4408 and 4429 (the HTTP 4xx rule) and 1008; everything else (1001, 1006,
1011, 1012 server restart, 1013, a refused connection, HTTP 5xx or 429 at the handshake)
is worth another attempt when ``auto_reconnect`` is on.

The token travels in the URL's query (``?token=``, the documented way): :func:`redact`
takes it out of every text the SDK writes, and :class:`RedactingLogger` out of what
``websockets`` logs at DEBUG level (the request line, and the custom headers' values).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlencode

from .._exceptions import CLOSE_CODES, TRANSIENT_CLOSE_CODES, InvalidInputError, RealtimeError
from .._wire.redact import redact
from .events import TERMINAL_TYPES, Connected, RealtimeEvent, parse_event
from .options import StreamOptions

__all__ = ["Backoff", "Outcome", "RedactingLogger", "Session", "StreamKind", "redact"]

StreamKind = Literal["job", "space"]


def permanent(code: int) -> bool:
    """Whether a close with ``code`` would only happen again on a new connection."""
    return code == 1008 or (4400 <= code < 4500 and code not in TRANSIENT_CLOSE_CODES)


class Backoff:
    """Exponential backoff with jitter: ``initial`` doubling up to ``maximum``.

    The ``n``-th wait in a row is drawn from the upper half of
    ``min(maximum, initial * 2**n)``, so that many clients do not reconnect in step.
    """

    def __init__(
        self, initial: float, maximum: float, rand: Callable[[], float] = random.random
    ) -> None:
        self.initial, self.maximum = initial, maximum
        self.failures = 0
        self._next = initial
        self._random = rand

    def next(self) -> float:
        """The seconds to wait before the next attempt; each call doubles the base."""
        base = self._next
        self._next = min(self.maximum, base * 2)
        self.failures += 1
        return base / 2 + base / 2 * self._random()

    def reset(self) -> None:
        """A connection succeeded: the next failure waits ``initial`` again."""
        self.failures, self._next = 0, self.initial


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to do after a connection ended: report ``error``; reconnect after ``delay``."""

    error: RealtimeError | None = None
    delay: float | None = None  # None: the stream ends


class Session:
    """One stream across its connections: the target, the cursor, the backoff."""

    def __init__(
        self,
        kind: StreamKind,
        target: str,
        options: StreamOptions,
        *,
        rand: Callable[[], float] = random.random,
    ) -> None:
        what = "job_id" if kind == "job" else "space_id"
        if not isinstance(target, str) or not target.strip():
            raise InvalidInputError(f"{what} must be a non-empty string, got {target!r}")
        delay = float(options.reconnect_delay)
        self.kind: StreamKind = kind
        self.target = target.strip()
        self.options = options
        self.backoff = Backoff(delay, max(delay, float(options.max_reconnect_delay)), rand)
        self.seq = options.since
        """The last ``seq`` seen (space stream): the cursor's position."""
        self.stream_instance_id = options.stream_instance_id
        """The server instance that numbered ``seq`` (space stream)."""
        self.missed: bool | None = None
        """The ``missed`` flag of the latest ``connected`` message; None before one."""
        self.finished = False
        """Whether the job stream saw its job end (nothing more will come)."""
        self.attempts = 0
        """Connection attempts so far."""
        self._fresh = False

    @property
    def label(self) -> str:
        return f"{self.kind} stream {self.target}"

    def url(self, base_url: str, token: str | None) -> str:
        """The WebSocket URL of the next attempt (``http`` → ``ws``, ``https`` → ``wss``)."""
        scheme, _, rest = base_url.partition("://")
        ws = "wss" if scheme == "https" else "ws"
        kind = "" if self.kind == "job" else "spaces/"
        params: dict[str, str] = {}
        if token:
            params["token"] = token
        if self.kind == "space" and self.seq is not None:
            params["since"] = str(self.seq)
        if self.kind == "space" and self.stream_instance_id:
            params["streamInstanceId"] = self.stream_instance_id
        query = f"?{urlencode(params)}" if params else ""
        return f"{ws}://{rest}/realtime/{kind}{quote(self.target, safe='')}{query}"

    def opened(self) -> None:
        """A socket opened; the backoff resets at its first message."""
        self._fresh = True

    def attempt(self) -> None:
        """A connection attempt starts."""
        self.attempts += 1

    def received(self, message: str | bytes) -> RealtimeEvent | None:
        """Read one message: the event to deliver, if it holds one; the cursor moves."""
        if self._fresh:
            # Reset on the first message, not on the handshake: a server that accepts
            # and then closes at once must not be retried at the shortest delay forever.
            self._fresh = False
            self.backoff.reset()
        event = parse_event(message)
        if isinstance(event, Connected):
            self.seq, self.missed = event.seq, event.missed
            self.stream_instance_id = event.stream_instance_id
        elif event is not None and event.seq is not None and self.kind == "space":
            self.seq = event.seq
        if event is not None and self.kind == "job":
            ended = event.terminal or (event.type == "init" and event.status in TERMINAL_TYPES)
            self.finished = self.finished or ended
        return event

    def closed(self, code: int, reason: str) -> Outcome:
        """The socket closed with ``code``: end, fail, or reconnect."""
        self._fresh = False
        if self.kind == "job" and (self.finished or code == 1000):
            return Outcome()  # the job ended, or the server says the stream did
        if code == 1000 and not self.options.auto_reconnect:
            return Outcome()
        if code == 1000:  # the space stream has no end: a normal close is a reason to resume
            return Outcome(delay=self.backoff.next())
        name = CLOSE_CODES.get(code)
        detail = f"{code} {name}" if name else str(code)
        text = f"{self.label}: closed ({detail})" + (f": {reason}" if reason else "")
        error = RealtimeError(text, close_code=code, reason=reason, retryable=not permanent(code))
        return self._after(error)

    def connect_failed(self, detail: str, *, status: int | None, transient: bool) -> Outcome:
        """No socket opened: refused, timed out, or the handshake answered ``status``."""
        self._fresh = False
        close_code = None
        if status is not None and 400 <= status < 500:
            close_code = 4000 + status  # the close code a server that accepts first would send
            transient = not permanent(close_code)
        elif status is not None:
            transient = status >= 500
        error = RealtimeError(
            f"{self.label}: could not connect: {detail}",
            close_code=close_code,
            status=status,
            retryable=transient,
        )
        return self._after(error)

    def _after(self, error: RealtimeError) -> Outcome:
        if error.retryable and self.options.auto_reconnect:
            error.reconnect_in = self.backoff.next()
            return Outcome(error, error.reconnect_in)
        return Outcome(error)


_PLAIN_HEADERS = frozenset(
    {"host", "upgrade", "connection", "user-agent", "origin"}
    | {f"sec-websocket-{h}" for h in ("key", "version", "extensions", "protocol")}
)


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger for ``websockets``: what it logs at DEBUG, less the token and header values.

    The request line carries the token; the client's custom headers (also sent with the
    handshake) often carry secrets too, so only the handshake's own headers are shown.
    """

    def __init__(self, logger: logging.Logger, secret: str | None) -> None:
        super().__init__(logger, {})
        self._secret = secret

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            if msg == "> %s: %s" and len(args) == 2 and str(args[0]).lower() not in _PLAIN_HEADERS:
                args = (args[0], "[redacted]")
            msg = redact(str(msg), self._secret)
            args = tuple(redact(a, self._secret) if isinstance(a, str) else a for a in args)
            super().log(level, msg, *args, **kwargs)
