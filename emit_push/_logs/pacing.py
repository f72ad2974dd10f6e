"""When a job logger's shipper may send next: pure, clock passed in.

A shipper sends every ``flush_interval`` while entries wait; after a failed send it waits
much longer, so that a service that is down gets a few requests, not one per full batch.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .._exceptions import APIError

__all__ = ["Pacing"]


class Pacing:
    """When a shipper may send next: after ``interval``, or after a failure, much later.

    The ``n``-th failure in a row pauses ``max(interval, retry_after, backoff)``, where the
    backoff is ``min(30, 0.5 * 2**(n-1))`` seconds, its upper half random (so that many
    workers do not retry in step), and ``retry_after`` is the service's, up to 300 s.
    """

    MAX_BACKOFF = 30.0
    MAX_RETRY_AFTER = 300.0

    def __init__(self, interval: float, rand: Callable[[], float] = random.random) -> None:
        self.interval = interval
        self.failures = 0
        self.retry_at = 0.0  # time.monotonic() before which only flush() sends
        self._random = rand

    def pause(self, now: float) -> float:
        """Seconds to wait before the next send."""
        return max(self.retry_at - now, self.interval)

    def backing_off(self, now: float) -> bool:
        """Whether a failure's pause is still on (full-batch wake-ups do not end it)."""
        return self.retry_at > now

    def failed(self, error: BaseException, now: float) -> None:
        """Record a failed send: the pause grows."""
        self.failures += 1
        backoff = min(self.MAX_BACKOFF, 0.5 * 2.0 ** (self.failures - 1))
        backoff = backoff / 2 + backoff / 2 * self._random()
        retry_after = error.retry_after if isinstance(error, APIError) else None
        wait = max(self.interval, backoff, min(retry_after or 0.0, self.MAX_RETRY_AFTER))
        self.retry_at = now + wait

    def succeeded(self) -> bool:
        """Record a success; True when that ends a backoff."""
        was = self.failures > 0
        self.failures, self.retry_at = 0, 0.0
        return was
