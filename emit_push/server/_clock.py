"""Clocks: the server reads time only through one of these, so tests can drive timers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """What the server needs of time: the present, and a wait that a wake event can cut short."""

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch."""
        ...

    async def wait(self, wake: asyncio.Event, until_ms: int | None) -> None:
        """Return when ``wake`` is set or the clock reaches ``until_ms`` (never, if None)."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def wait(self, wake: asyncio.Event, until_ms: int | None) -> None:
        timeout = None if until_ms is None else max(0.0, (until_ms - self.now_ms()) / 1000)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout)


class ManualClock:
    """A clock that moves only when told to: ``advance()`` wakes every waiter.

    >>> clock = ManualClock(start_ms=1_700_000_000_000)
    >>> clock.advance(301)  # five minutes and a second later; due timers fire
    """

    def __init__(self, start_ms: int | None = None) -> None:
        self._now = time.time_ns() // 1_000_000 if start_ms is None else start_ms
        self._waiters: set[asyncio.Event] = set()

    def now_ms(self) -> int:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += round(seconds * 1000)
        for wake in self._waiters:
            wake.set()

    async def wait(self, wake: asyncio.Event, until_ms: int | None) -> None:
        if until_ms is not None and until_ms <= self._now:
            return
        self._waiters.add(wake)
        try:
            await wake.wait()
        finally:
            self._waiters.discard(wake)
