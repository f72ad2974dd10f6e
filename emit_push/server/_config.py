"""Settings of the local emit server."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ._clock import Clock, SystemClock

__all__ = ["DEFAULT_DB_PATH", "KeySpec", "ServerConfig"]

DEFAULT_DB_PATH = ".emit/dev.sqlite3"


@dataclass(frozen=True)
class KeySpec:
    """An API key the server must know. ``space_id`` None means the default space."""

    key: str
    scopes: Sequence[str]
    name: str = "custom"
    space_id: str | None = None


@dataclass(frozen=True)
class ServerConfig:
    """How the local emit server stores, limits and times things.

    Keys left as None are created on first start and kept in the database; giving them here
    (or with the CLI flags) fixes them, which scripts and tests want.
    """

    db_path: str = DEFAULT_DB_PATH
    space_id: str | None = None
    worker_key: str | None = None
    producer_key: str | None = None
    progress_token: str | None = None
    api_keys: Sequence[KeySpec] = ()
    rate_limit: float | None = None
    """Requests per second per key; None turns the limit off (emit.run allows 1000)."""
    max_request_bytes: int = 5 * 1024 * 1024
    max_payload_bytes: int = 1024 * 1024
    max_bulk_jobs: int = 1000
    push_timeout: float = 10.0
    callback_timeout: float = 10.0
    callback_retry_delays: Sequence[float] = (1.0, 5.0, 25.0)
    outbound_concurrency: int = 32
    clock: Clock = field(default_factory=SystemClock)

    def __post_init__(self) -> None:
        """Refuse settings that would break every request or the scheduler (ValueError)."""
        if self.rate_limit is not None:
            _positive("rate_limit", self.rate_limit)
        for name in ("max_request_bytes", "max_payload_bytes", "max_bulk_jobs"):
            _positive(name, getattr(self, name), integer=True)
        _positive("outbound_concurrency", self.outbound_concurrency, integer=True)
        _positive("push_timeout", self.push_timeout)
        _positive("callback_timeout", self.callback_timeout)
        for delay in self.callback_retry_delays:
            # 0 is a retry at once: allowed. Negative or infinite delays are not.
            if isinstance(delay, bool) or not isinstance(delay, int | float):
                raise ValueError(f"callback_retry_delays: {delay!r} is not a number")
            if not 0 <= delay < math.inf:
                raise ValueError(f"callback_retry_delays: {delay!r} must be 0 or more seconds")


def _positive(name: str, value: object, *, integer: bool = False) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (integer and not isinstance(value, int))
    ):
        raise ValueError(f"{name} must be {'an integer' if integer else 'a number'}, not {value!r}")
    if not 0 < value < math.inf:
        raise ValueError(f"{name} must be greater than 0 (and finite), not {value!r}")
