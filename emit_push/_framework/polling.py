"""The polling worker: the app's handlers, fed by ``poll`` instead of pushes.

Each round claims up to ``count`` jobs (of the app's job names) and runs them at once,
with exactly the push path's steps (``runner.run_claimed``). An empty poll sleeps
``poll_interval``, doubling with jitter up to ``max_backoff`` while the queue stays empty;
a failed poll goes to ``on_error`` and backs off the same way (``stop_on_error`` ends the
loop with that error instead). A poll refused for its key (401, 403) ends the loop with
that error at once: every next poll would be refused too.

Stopping (the ``stop`` event, SIGTERM or SIGINT): no new polls; running jobs get
``grace_period`` seconds to finish; those still running then are stopped and failed back
(``worker stopped``), so they are retried at once. A second signal skips the grace period.
No job is left ``delivered`` or ``running`` by a stopped worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Unpack

from .._exceptions import AuthenticationError, EmitError, PermissionDeniedError
from .options import POLL_DEFAULTS
from .runner import ANY_NAME

if TYPE_CHECKING:
    from .._wire.models import JobDescriptor
    from .options import PollOptions
    from .push import PushResult
    from .runner import Runner

__all__ = ["Backoff", "run_polling"]

MAX_COUNT = 50
"""The most jobs one poll may claim (contract: ``count`` 1-50)."""

log = logging.getLogger("emit_push")


class Backoff:
    """``poll_interval``, doubling (±20% jitter) up to ``max_backoff``; reset on work."""

    def __init__(self, poll_interval: float, max_backoff: float) -> None:
        self.base = poll_interval
        self.cap = max(max_backoff, poll_interval)
        self._current = poll_interval

    def reset(self) -> None:
        self._current = self.base

    def next(self) -> float:
        delay = self._current * random.uniform(0.8, 1.2)
        self._current = min(self._current * 2, self.cap)
        return min(delay, self.cap)


async def run_polling(runner: Runner, **options: Unpack[PollOptions]) -> None:
    """Poll and run jobs with ``runner``'s handlers until stopped (see the module docstring).

    ``options`` are checked by the caller (``EmitPush.run_polling``).
    """
    given: PollOptions = {**POLL_DEFAULTS, **options}
    types, count, on_done = given["types"], given["count"], given["on_done"]
    poll_interval, max_backoff = given["poll_interval"], given["max_backoff"]
    grace_period = given["grace_period"]
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be between 1 and {MAX_COUNT}")
    if poll_interval <= 0 or max_backoff <= 0 or grace_period < 0:
        raise ValueError("poll_interval and max_backoff must be > 0, grace_period >= 0")
    names = _names(runner, types)
    stopping = asyncio.Event()
    abort = asyncio.Event()
    backoff = Backoff(poll_interval, max_backoff)
    client = runner.client()
    from .._wire.endpoints import poll

    signals = _signals(given["handle_signals"], stopping, abort)
    with signals, _watch(given["stop"], stopping):
        log.info("emit-push: polling space %s for %s", client.space_id, names or "every job")
        while not stopping.is_set():
            try:
                found: list[JobDescriptor] = await client.send(poll(client.space_id, count, names))
            except EmitError as exc:
                await _loop_error(runner, exc)
                await _sleep(stopping, backoff.next())
                continue
            if not found:
                await _sleep(stopping, backoff.next())
                continue
            backoff.reset()
            batch = [
                asyncio.create_task(runner.run_claimed(d, abort=abort), name=f"job-{d.id}")
                for d in found
            ]
            await _finish(batch, stopping, abort, grace_period)
            for task in batch:
                result = task.result()
                if on_done is not None:
                    on_done(result)
    log.info("emit-push: polling stopped")


async def _finish(
    batch: list[asyncio.Task[PushResult]],
    stopping: asyncio.Event,
    abort: asyncio.Event,
    grace_period: float,
) -> None:
    """Wait for the batch; on stop, a grace period, then abort what still runs."""
    # return_exceptions: a failing run (stop_on_error) must not leave the others behind.
    everything: asyncio.Future[Any] = asyncio.gather(*batch, return_exceptions=True)
    stopped: asyncio.Future[Any] = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({everything, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not everything.done():
            aborted: asyncio.Future[Any] = asyncio.ensure_future(abort.wait())
            await asyncio.wait(
                {everything, aborted}, timeout=grace_period, return_when=asyncio.FIRST_COMPLETED
            )
            aborted.cancel()
            abort.set()  # what still runs is stopped and failed back
        await everything
    finally:
        stopped.cancel()


async def _loop_error(runner: Runner, exc: EmitError) -> None:
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        raise exc
    log.warning("emit-push: poll failed: %s", exc)
    on_error = runner.options["on_error"]
    if on_error is not None:
        called = on_error(exc, None)
        if asyncio.iscoroutine(called):
            await called
    if runner.options["stop_on_error"]:
        raise exc


async def _sleep(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


def _names(runner: Runner, types: str | Sequence[str] | None) -> list[str] | None:
    if types is not None:
        return [types] if isinstance(types, str) else list(types)
    if ANY_NAME in runner.handlers or not runner.handlers:
        return None  # a catch-all handler takes every job
    return sorted(runner.handlers)


@contextlib.contextmanager
def _signals(enabled: bool, stopping: asyncio.Event, abort: asyncio.Event) -> Iterator[None]:
    """SIGTERM/SIGINT stop polling; a second one aborts the grace period."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stopping.is_set():
            abort.set()
        stopping.set()

    installed = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, on_signal)
            installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


@contextlib.contextmanager
def _watch(stop: asyncio.Event | threading.Event | None, stopping: asyncio.Event) -> Iterator[None]:
    """Mirror the caller's stop event (asyncio or threading) into ``stopping``."""
    if stop is None:
        yield
        return
    if isinstance(stop, asyncio.Event):
        waiter = asyncio.ensure_future(stop.wait())
        waiter.add_done_callback(lambda _: stopping.set())
    else:
        loop = asyncio.get_running_loop()
        done = threading.Event()

        def wait() -> None:
            while not done.is_set():
                if stop.wait(0.1):
                    loop.call_soon_threadsafe(stopping.set)
                    return

        thread = threading.Thread(target=wait, name="emit-push-stop", daemon=True)
        thread.start()
    try:
        yield
    finally:
        if isinstance(stop, asyncio.Event):
            waiter.cancel()
        else:
            done.set()
