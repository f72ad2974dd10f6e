"""Pacing: when a shipper sends next, after successes and failures (pure)."""

from __future__ import annotations

from emit_push import RateLimitError, ServerError
from emit_push._logs.pacing import Pacing


def test_failures_pause_longer_and_longer_up_to_a_cap() -> None:
    pacing = Pacing(interval=1.0, rand=lambda: 1.0)  # the top of each jitter range
    assert pacing.pause(now=100.0) == 1.0  # no failure: the interval
    pauses = []
    for _ in range(10):
        pacing.failed(ServerError("down", status=503), now=100.0)
        pauses.append(pacing.pause(now=100.0))
    assert pauses == [1.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    assert pacing.backing_off(now=129.0)
    assert pacing.succeeded()  # a success ends the backoff
    assert (pacing.pause(now=100.0), pacing.backing_off(now=100.0)) == (1.0, False)
    assert not pacing.succeeded()


def test_retry_after_and_the_interval_are_floors() -> None:
    pacing = Pacing(interval=0.1, rand=lambda: 0.0)
    pacing.failed(RateLimitError("slow down", status=429, retry_after=7.0), now=0.0)
    assert pacing.pause(now=0.0) == 7.0
    pacing.failed(RateLimitError("slow down", status=429, retry_after=86400.0), now=0.0)
    assert pacing.pause(now=0.0) == 300.0  # an absurd Retry-After is capped
    slow = Pacing(interval=5.0, rand=lambda: 0.0)
    slow.failed(ServerError("down", status=503), now=0.0)
    assert slow.pause(now=0.0) == 5.0
