"""Waiting for what nothing announces: poll a condition until it holds, or fail saying what.

    wait_for(lambda: job.log.sent >= 20, message="every line sent")        # sync code
    await eventually(lambda: job.log.sent >= 20, message="every line sent")  # async tests
    await eventually(job_is_pending, timeout=5)       # an async condition is awaited each time

Both call ``condition`` every ``interval`` seconds until it returns something truthy, and
return that value. When ``timeout`` passes first, they raise ``AssertionError`` naming what
was awaited and the condition's last value, so a failure reads like a failed ``assert``.
``eventually`` sleeps on the event loop, so tasks (and the server under test) run meanwhile.

Await what announces itself instead, when something does: an event, a future, a
``Process.wait_for`` output line, a ``threading.Condition``. These helpers are for states
that can only be looked at (a counter, a file, another process's view of a job).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

import anyio

__all__ = ["INTERVAL", "TIMEOUT", "eventually", "wait_for"]

T = TypeVar("T")

TIMEOUT = 10.0
"""Seconds: long enough for a loaded CI machine, short enough to fail before pytest-timeout."""
INTERVAL = 0.01
"""Seconds between two looks at the condition."""


def wait_for(
    condition: Callable[[], T],
    *,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
    message: str | None = None,
) -> T:
    """Call ``condition`` until it returns a truthy value, and return that value.

    Raises AssertionError after ``timeout`` seconds: ``message`` (or the condition's source
    line) and the last value it returned. Blocks the calling thread: from async code, use
    :func:`eventually`.
    """
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() >= deadline:
            raise AssertionError(_timed_out(condition, value, timeout, message))
        time.sleep(interval)
    return value


@overload
async def eventually(
    condition: Callable[[], Awaitable[T]],
    *,
    timeout: float = ...,
    interval: float = ...,
    message: str | None = ...,
) -> T: ...


@overload
async def eventually(
    condition: Callable[[], T],
    *,
    timeout: float = ...,
    interval: float = ...,
    message: str | None = ...,
) -> T: ...


async def eventually(
    condition: Callable[[], Any],
    *,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
    message: str | None = None,
) -> Any:
    """:func:`wait_for` for async tests: sleeps on the event loop between two looks.

    ``condition`` may be a coroutine function too (one that asks the server, say): each
    look awaits it.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(_timed_out(condition, value, timeout, message))
        await anyio.sleep(interval)


def _timed_out(
    condition: Callable[[], object], last: object, timeout: float, message: str | None
) -> str:
    return f"waited {timeout:g} s for {message or _source(condition)}; the last check gave {last!r}"


def _source(condition: Callable[[], object]) -> str:
    """The line that defines ``condition`` (a lambda, usually), else its name."""
    try:
        return inspect.getsource(condition).strip()
    except (OSError, TypeError):
        return getattr(condition, "__qualname__", repr(condition))
