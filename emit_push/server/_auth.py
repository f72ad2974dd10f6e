"""API key authentication, scope checks and the optional per-key rate limit."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ._errors import ApiError

__all__ = ["Keyring", "Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's space and concrete scopes (never the key itself)."""

    name: str
    space_id: str
    scopes: frozenset[str]
    bucket: str  # rate-limit bucket: a digest of the key

    def require(self, *scopes: str, space_id: str | None = None) -> None:
        """403 unless the key holds one of ``scopes`` (and belongs to ``space_id``)."""
        if self.scopes.isdisjoint(scopes):
            raise ApiError(403, "forbidden", f"Missing required scope: {scopes[0]}")
        if space_id is not None and space_id != self.space_id:
            raise ApiError(403, "forbidden", "API key does not belong to this space")


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    if key := headers.get("x-api-key"):
        return key.strip()
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class Keyring:
    """Known keys, looked up by digest so the comparison does not leak the key's prefix."""

    def __init__(self, rate_limit: float | None, now_ms: Callable[[], int]) -> None:
        self._by_digest: dict[bytes, Principal] = {}
        self._rate = rate_limit
        self._now = now_ms
        self._buckets: dict[str, tuple[float, int]] = {}

    def add(self, key: str, name: str, space_id: str, scopes: frozenset[str]) -> None:
        digest = _digest(key)
        self._by_digest[digest] = Principal(name, space_id, scopes, digest.hex()[:16])

    def authenticate(self, key: str | None) -> Principal:
        if not key:
            raise ApiError(401, "unauthorized", "Missing API key (x-api-key or Bearer token)")
        principal = self._by_digest.get(_digest(key))
        if principal is None:
            raise ApiError(401, "unauthorized", "Invalid API key")
        self._throttle(principal.bucket)
        return principal

    def _throttle(self, bucket: str) -> None:
        """A token bucket per key: ``rate`` requests a second, bursts up to ``rate``.

        The bucket holds at least one token, so a rate below 1/s still lets a request
        through now and then (one every ``1/rate`` seconds).
        """
        if self._rate is None:
            return
        now = self._now()
        capacity = max(1.0, self._rate)
        tokens, last = self._buckets.get(bucket, (capacity, now))
        tokens = min(capacity, tokens + (now - last) / 1000 * self._rate)
        if tokens < 1:
            retry_after = max(1, math.ceil((1 - tokens) / self._rate))
            self._buckets[bucket] = (tokens, now)
            raise ApiError(
                429,
                "rate_limited",
                f"Rate limit of {self._rate:g} requests per second exceeded",
                {"Retry-After": str(retry_after)},
            )
        self._buckets[bucket] = (tokens - 1, now)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()
