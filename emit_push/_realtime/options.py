"""What a caller asks of a realtime stream: its options and its callbacks, each one value.

The public methods (``connect_job``, ``connect_space``, ``job``, ``space`` in ``streams``)
spell their keywords out for users and type checkers, and turn them into one
:class:`StreamOptions` (validated at once) and one :class:`Callbacks`; every layer below
takes those two values, never the keywords one by one.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .._exceptions import InvalidInputError
from .events import RealtimeClose, RealtimeEvent

__all__ = ["Callbacks", "Connect", "RealtimeSocket", "StreamOptions"]


class RealtimeSocket(Protocol):
    """What a stream needs of an open WebSocket (``websockets``' ``ClientConnection`` is one).

    ``recv()`` returns the next message and raises once the connection is closed: with
    ``websockets``' ``ConnectionClosed`` the close code is read from it; with any other
    exception from the socket's ``close_code`` and ``close_reason`` attributes, when it
    has them (else the close is 1006, lost).
    """

    async def recv(self) -> str | bytes: ...

    async def close(self) -> None: ...


Connect = Callable[..., Awaitable[RealtimeSocket]]
"""The realtime connect hook (the TypeScript SDK's ``webSocketFactory``).

Called as ``websockets.asyncio.client.connect`` is, once per connection: the URL
(``ws(s)://.../realtime/...``, the token in its query) and that function's keyword
arguments (``additional_headers``, ``user_agent_header``, ``open_timeout``,
``close_timeout``, ``max_size``, ``logger``). Returns an awaitable of the open socket
(a :class:`RealtimeSocket`). Wrap the default to add a proxy or TLS settings, or open
the socket with another library (the headers are ``additional_headers``)::

    from websockets.asyncio.client import connect

    def via_proxy(url: str, **options: Any) -> connect:
        return connect(url, proxy="http://proxy.internal:3128", ssl=context, **options)

    client.realtime.connect_job(job_id, connect=via_proxy, on_event=print)
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamOptions:
    """How a stream authenticates, reconnects and resumes; invalid values raise at once.

    The defaults are those of the public methods' signatures (a test holds them equal).
    """

    token: str | None = None
    """The key to send (stripped when sent); None: anonymous, or the client's key."""
    use_api_key: bool = False
    """Send the client's API key, resolved for every connection."""
    auto_reconnect: bool = False
    reconnect_delay: float = 1.0
    max_reconnect_delay: float = 15.0
    since: int | None = None
    """Space stream: the cursor to resume from."""
    stream_instance_id: str | None = None
    """Space stream: the server instance that numbered ``since``."""
    connect: Connect | None = None
    """Opens each connection's socket; None: ``websockets.asyncio.client.connect``."""

    def __post_init__(self) -> None:
        since, instance = self.since, self.stream_instance_id
        if since is not None and (isinstance(since, bool) or not isinstance(since, int)):
            raise InvalidInputError(f"since must be an integer >= 0, got {since!r}")
        if since is not None and since < 0:
            raise InvalidInputError(f"since must be an integer >= 0, got {since!r}")
        if instance is not None and not isinstance(instance, str):
            raise InvalidInputError(f"stream_instance_id must be a string, got {instance!r}")
        _seconds("reconnect_delay", self.reconnect_delay)
        _seconds("max_reconnect_delay", self.max_reconnect_delay)
        token = self.token
        if token is not None and (not isinstance(token, str) or not token.strip()):
            raise InvalidInputError("token must be a non-empty string")
        if token is not None and self.use_api_key:
            raise InvalidInputError("pass token= or use_api_key=True, not both")
        if self.connect is not None and not callable(self.connect):
            raise InvalidInputError(f"connect must be callable, got {self.connect!r}")


def _seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"{name} must be a number of seconds, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise InvalidInputError(f"{name} must be a positive number of seconds, got {value!r}")


@dataclass(frozen=True, slots=True)
class Callbacks:
    """The caller's hooks; each may be a function or an async function."""

    on_open: Callable[[], Any] | None = None
    on_event: Callable[[RealtimeEvent], Any] | None = None
    on_error: Callable[[Exception], Any] | None = None
    on_close: Callable[[RealtimeClose], Any] | None = None
