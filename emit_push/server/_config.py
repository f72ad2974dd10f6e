"""Settings of the local emit server."""

from __future__ import annotations

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
