"""Identifiers (monotonic ULIDs), API keys and the wire's timestamp format."""

from __future__ import annotations

import os
import secrets
import threading
import time
from datetime import UTC, datetime

__all__ = ["format_ts", "new_key", "new_ulid", "parse_ts"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10 bits → 2 characters
_lock = threading.Lock()
_last_ms = -1
_last_rand = 0


def new_ulid(now_ms: int | None = None) -> str:
    """A ULID; within one millisecond the random part increments, so ids sort by creation."""
    global _last_ms, _last_rand
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    with _lock:
        if ms <= _last_ms:
            ms = _last_ms
            _last_rand = (_last_rand + 1) & ((1 << 80) - 1)
        else:
            _last_ms = ms
            _last_rand = int.from_bytes(os.urandom(10), "big") >> 1  # room to increment
        value = (ms << 80) | _last_rand
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in range(120, -1, -10)])


def new_key() -> str:
    """A fresh API key in emit.run's format (``emit_`` and 40 URL-safe characters)."""
    return "emit_" + secrets.token_urlsafe(30)


def format_ts(ms: int) -> str:
    """``2025-02-24T10:30:00.000Z`` from epoch milliseconds."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def parse_ts(value: str) -> int:
    """Epoch milliseconds from an ISO-8601 string; no offset means UTC. Raises ValueError."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return round(parsed.timestamp() * 1000)
