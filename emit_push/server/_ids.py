"""Identifiers (monotonic ULIDs), API keys and the wire's timestamp format."""

from __future__ import annotations

import os
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta

__all__ = ["MAX_TS_MS", "TimestampRangeError", "format_ts", "new_key", "new_ulid", "parse_ts"]

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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
MAX_TS_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: the last 4-digit year


class TimestampRangeError(ValueError):
    """A valid ISO-8601 timestamp outside the years 1970 to 9999 (UTC)."""


def format_ts(ms: int) -> str:
    """``2025-02-24T10:30:00.000Z`` from epoch milliseconds (the year always 4 digits)."""
    seconds, millis = divmod(ms, 1000)
    t = time.gmtime(seconds)
    if 0 <= ms <= MAX_TS_MS:  # what parse_ts accepts: strftime's %Y has 4 digits there
        return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{millis:03d}Z"
    return (  # older data only; %Y would not pad the year
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
        f"T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{millis:03d}Z"
    )


def parse_ts(value: str) -> int:
    """Epoch milliseconds from an ISO-8601 string; no offset means UTC.

    Raises ValueError for anything else, and TimestampRangeError for instants outside
    1970..9999 in UTC (the wire format has four-digit years; nothing here predates 1970).
    """
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    ms = (parsed - _EPOCH) // _MS  # exact: no float rounding into the next year
    if not 0 <= ms <= MAX_TS_MS:
        raise TimestampRangeError(f"{value[:40]!r} is outside the years 1970 to 9999 (UTC)")
    return ms
