"""What a caller asks of a realtime stream: its options and its callbacks, each one value.

The public methods (``connect_job``, ``connect_space``, ``job``, ``space`` in ``streams``)
spell their keywords out for users and type checkers, and turn them into one
:class:`StreamOptions` (validated at once) and one :class:`Callbacks`; every layer below
takes those two values, never the keywords one by one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._exceptions import InvalidInputError
from .events import RealtimeClose, RealtimeEvent

__all__ = ["Callbacks", "StreamOptions"]


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
