"""Settings of the local emit server."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from ._clock import Clock, SystemClock

__all__ = ["DEFAULT_DB_PATH", "KeySpec", "Resolver", "ServerConfig"]

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``(host, port) -> IP addresses``, as ``getaddrinfo`` would answer (see ``resolver``)."""

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
    max_result_bytes: int = 1024 * 1024
    """A ``complete``'s result, as stored (compact JSON): like a payload."""
    max_text_bytes: int = 16 * 1024
    """A progress message (and each stage's), and a kill reason (UTF-8)."""
    max_error_bytes: int = 64 * 1024
    """A ``fail``'s error (UTF-8): room for a traceback."""
    max_event_bytes: int = 64 * 1024
    """Checkpoint and custom event data, and a whole progress record, as stored."""
    max_bulk_jobs: int = 1000
    push_timeout: float = 10.0
    push_retry_delays: Sequence[float] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0, 60.0)
    """Seconds before each new push of a job that is still pending after a failed push
    (no answer, or not 2xx); the number of delays is the number of retries."""
    callback_timeout: float = 10.0
    callback_retry_delays: Sequence[float] = (1.0, 5.0, 25.0)
    outbound_concurrency: int = 32
    resolver: Resolver | None = None
    """How push and callback hosts are resolved, to check where they lead; None is the
    system's ``getaddrinfo``. Tests give a table, so that no lookup leaves the machine."""
    header_timeout: float = 10.0
    """Seconds a client has to send a request's headers (``emit-push server``)."""
    body_timeout: float = 30.0
    """Seconds a request's body may pause between two reads (``emit-push server``)."""
    clock: Clock = field(default_factory=SystemClock)

    def __post_init__(self) -> None:
        """Refuse settings that would break every request or the scheduler (ValueError)."""
        if self.rate_limit is not None:
            _positive("rate_limit", self.rate_limit)
        for name in _SIZES:
            _positive(name, getattr(self, name), integer=True)
        _positive("outbound_concurrency", self.outbound_concurrency, integer=True)
        for name in ("push_timeout", "callback_timeout", "header_timeout", "body_timeout"):
            _positive(name, getattr(self, name))
        for name in ("push_retry_delays", "callback_retry_delays"):
            for delay in getattr(self, name):
                # 0 is a retry at once: allowed. Negative or infinite delays are not.
                if isinstance(delay, bool) or not isinstance(delay, int | float):
                    raise ValueError(f"{name}: {delay!r} is not a number")
                if not 0 <= delay < math.inf:
                    raise ValueError(f"{name}: {delay!r} must be 0 or more seconds")


_SIZES = (
    "max_request_bytes", "max_payload_bytes", "max_result_bytes", "max_text_bytes",
    "max_error_bytes", "max_event_bytes", "max_bulk_jobs",
)  # fmt: skip


def _positive(name: str, value: object, *, integer: bool = False) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (integer and not isinstance(value, int))
    ):
        raise ValueError(f"{name} must be {'an integer' if integer else 'a number'}, not {value!r}")
    if not 0 < value < math.inf:
        raise ValueError(f"{name} must be greater than 0 (and finite), not {value!r}")
