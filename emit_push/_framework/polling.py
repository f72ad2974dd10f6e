"""The polling worker: the app's handlers, fed by ``poll`` instead of pushes.

Each round claims up to ``count`` jobs (of the app's job names) and runs them at once,
with exactly the push path's steps (``runner.run_claimed``). An empty poll sleeps
``poll_interval``, doubling with jitter up to ``max_backoff`` while the queue stays empty.

A failed poll (after the client's own retries) is the loop's error, as in the TypeScript
SDK: it goes to the app's ``on_error`` with ``None`` for the job, and the loop backs off
as after an empty poll and polls again; with the app's ``stop_on_error`` the loop ends,
raising that error. A poll refused for its key (401, 403) ends the loop with that error at
once: every next poll would be refused too.

Stopping (the ``stop`` event, SIGTERM or SIGINT): no new polls; running jobs get
``grace_period`` seconds to finish; those still running then are stopped and failed back
(``worker stopped``), so they are retried at once. A second signal skips the grace period.
Cancelling the task that runs the loop skips it too: the functions are stopped at once,
and the cancellation waits (up to their ``deadline_margin`` plus ``FAIL_BACK_TIMEOUT``)
until each job is failed back, so the client is still open for it; jobs a poll in flight
delivered are failed back unrun. No job is left ``delivered`` or ``running`` by a stopped
worker, and none is completed after the loop returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import signal
import threading
import time
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

__all__ = [
    "FAIL_BACK_TIMEOUT",
    "Backoff",
    "PollingLoop",
    "fail_back_time",
    "poll_error",
    "run_polling",
]

MAX_COUNT = 50
"""The most jobs one poll may claim (contract: ``count`` 1-50)."""
FAIL_BACK_TIMEOUT = 10.0
"""Seconds a cancelled loop waits, after its functions were stopped, for their jobs to be
failed back (the fail call, with its retries)."""

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


async def run_polling(
    runner: Runner, *, running: set[PollingLoop] | None = None, **options: Unpack[PollOptions]
) -> None:
    """Poll and run jobs with ``runner``'s handlers until stopped (see the module docstring).

    ``options`` are checked by the caller (``EmitPush.run_polling``). The loop is in
    ``running`` while it runs (``EmitPush.aclose`` stops those).
    """
    given: PollOptions = {**POLL_DEFAULTS, **options}
    count, poll_interval = given["count"], given["poll_interval"]
    max_backoff, grace_period = given["max_backoff"], given["grace_period"]
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be between 1 and {MAX_COUNT}")
    if poll_interval <= 0 or max_backoff <= 0 or grace_period < 0:
        raise ValueError("poll_interval and max_backoff must be > 0, grace_period >= 0")
    loop = PollingLoop(runner, given)
    signals = _signals(given["handle_signals"], loop.stopping, loop.abort)
    if running is not None:
        running.add(loop)
    try:
        with signals, _watch(given["stop"], loop.stopping):
            try:
                await loop.run()
            except asyncio.CancelledError:
                # Cancelled: no grace, but no job left behind either: every running job
                # is stopped and failed back before the cancellation goes on (and before
                # the caller closes the client those calls need).
                await loop.fail_back()
                raise
    finally:
        loop.finished.set()
        if running is not None:
            running.discard(loop)
    log.info("emit-push: polling stopped")


class PollingLoop:
    """One polling loop: what it polls for, and what it has running."""

    def __init__(self, runner: Runner, options: PollOptions) -> None:
        self.runner = runner
        self.options = options
        self.names = _names(runner, options["types"])
        self.event_loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        """No new polls; running jobs get the grace period."""
        self.abort = asyncio.Event()
        """Running jobs are stopped and failed back now."""
        self.finished = asyncio.Event()
        """The loop has returned (or raised)."""
        self.polling: asyncio.Future[list[JobDescriptor]] | None = None
        self.batch: list[asyncio.Task[PushResult]] = []

    async def stop(self, grace_period: float) -> None:
        """Stop it as its ``stop`` event does (running jobs get ``grace_period`` seconds,
        then are failed back), and wait until it has returned."""
        self.stopping.set()
        finished = asyncio.ensure_future(self.finished.wait())
        try:
            await asyncio.wait({finished}, timeout=grace_period)
            if not finished.done():
                self.abort.set()
                await asyncio.wait({finished}, timeout=fail_back_time(self.runner))
        finally:
            finished.cancel()

    async def run(self) -> None:
        from .._wire.endpoints import poll

        client = self.runner.client()
        count, on_done = self.options["count"], self.options["on_done"]
        backoff = Backoff(self.options["poll_interval"], self.options["max_backoff"])
        log.info("emit-push: polling space %s for %s", client.space_id, self.names or "every job")
        while not self.stopping.is_set():
            # Shielded: a cancellation must not lose the answer of a poll that delivered
            # jobs to us (see fail_back).
            polling = self.polling = asyncio.ensure_future(
                client.send(poll(client.space_id, count, self.names))
            )
            try:
                found = await asyncio.shield(polling)
            except EmitError as exc:
                self.polling = None
                await poll_error(self.runner, exc)
                await _sleep(self.stopping, backoff.next())
                continue
            self.polling = None  # (kept when cancelled, even with its answer in)
            if not found:
                await _sleep(self.stopping, backoff.next())
                continue
            backoff.reset()
            self.batch = [self._start(d) for d in found]
            await _finish(self.batch, self.stopping, self.abort, self.options["grace_period"])
            batch, self.batch = self.batch, []
            for task in batch:
                result = task.result()
                if on_done is not None:
                    on_done(result)

    def _start(self, descriptor: JobDescriptor) -> asyncio.Task[PushResult]:
        run = self.runner.run_claimed(descriptor, abort=self.abort)
        return asyncio.create_task(run, name=f"job-{descriptor.id}")

    async def fail_back(self) -> None:
        """Stop every running job now; wait until each is failed back (bounded)."""
        self.abort.set()
        self.stopping.set()
        ends = time.monotonic() + fail_back_time(self.runner)
        given_back: list[asyncio.Task[Any]] = []
        polling = self.polling
        if polling is not None:  # the jobs it delivered never started: given back unrun
            await asyncio.wait({polling}, timeout=max(ends - time.monotonic(), 0))
            if not polling.done():
                polling.add_done_callback(_retrieved)
            elif not polling.cancelled() and polling.exception() is None:
                given_back = [
                    asyncio.create_task(_give_back(self.runner, d)) for d in polling.result()
                ]
        running = [*self.batch, *given_back]
        if running:
            await asyncio.wait(running, timeout=max(ends - time.monotonic(), 0))
        on_done = self.options["on_done"]
        for task in self.batch:
            if not task.done():
                task.add_done_callback(_retrieved)
                log.warning(
                    "emit-push: job %s was not failed back in time; it will be retried"
                    " after its timeout",
                    task.get_name().removeprefix("job-"),
                )
            elif on_done is not None and not task.cancelled() and task.exception() is None:
                try:
                    on_done(task.result())
                except Exception:
                    log.exception("emit-push: on_done raised")


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Nobody awaits ``future`` any more: its error is not worth a warning at exit."""
    if not future.cancelled():
        future.exception()


def fail_back_time(runner: Runner) -> float:
    """How long a cancelled loop waits for its jobs: the functions are stopped (their
    ``deadline_margin``), then each job is failed back (``FAIL_BACK_TIMEOUT``)."""
    margins = [h.options["deadline_margin"] for h in runner.handlers.values()]
    return max(margins, default=runner.options["deadline_margin"]) + FAIL_BACK_TIMEOUT


async def _give_back(runner: Runner, descriptor: JobDescriptor) -> None:
    """A job delivered to a loop that was cancelled before it could start it: failed
    back (acknowledged first: only a running job can be failed), without running it."""
    from .._wire import endpoints as ep
    from .decisions import WORKER_STOPPED

    client = runner.client()
    try:
        await client.send(ep.ack(descriptor.id, descriptor.attempt_number))
        await client.send(ep.fail(descriptor.id, WORKER_STOPPED, descriptor.attempt_number))
    except EmitError as exc:
        log.warning("emit-push: could not give job %s back: %s", descriptor.id, exc)


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
        # Shielded: a cancellation leaves the runs to the loop's fail_back, not cancelled
        # mid-call (a complete in flight, say).
        await asyncio.shield(everything)
    finally:
        stopped.cancel()


async def poll_error(runner: Runner, exc: EmitError) -> None:
    """A failed poll: to the loop's ``on_error`` (no job), then on, or out with
    ``stop_on_error``. A refused key ends the loop at once."""
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        raise exc
    log.warning("emit-push: poll failed: %s", exc)
    on_error = runner.options["on_error"]
    if on_error is not None:
        try:
            called = on_error(exc, None)
            if inspect.isawaitable(called):
                await called
        except Exception:
            log.exception("emit-push: on_error raised on a poll error")
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
