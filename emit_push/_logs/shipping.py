"""Shippers: what sends a job logger's batches, a thread for sync code, a task for async.

Both follow the same rules, set by ``LogBuffer`` and ``Pacing``: a shipper starts with the
first entry after an idle spell, waits ``flush_interval`` (or less, when a full batch
waits), sends every waiting batch, and retires once nothing waits. After a failed send it
waits until a retry time (the interval, the service's ``Retry-After``, and a backoff that
doubles up to 30 s, whichever is longest), and full-batch wake-ups do not cut that short:
a service that is down gets a few requests, not one per hundred lines. ``flush`` sends
what waits now, backoff or not (closing and ``complete`` always try once); batches never
go out concurrently, so they arrive in order. Each batch goes through ``delivery``, which
settles lost answers without storing a batch twice.

Lines must not vanish with the job's owner, either: a sync job never closed is flushed at
interpreter exit (``atexit``, at most ``EXIT_FLUSH_SECONDS`` in all); an async shipper
whose task is cancelled because its event loop is ending tries one last flush (within
the same bound). Whatever still cannot be sent is counted as lost and reported with a
warning on the ``emit_push`` logger. A job used again from a new event loop, after its
first one closed, ships from the new loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from .._wire.endpoints import Call
from .delivery import Delivery
from .logger import START, Batch, LogBuffer
from .pacing import Pacing

__all__ = ["EXIT_FLUSH_SECONDS", "TaskShipper", "ThreadShipper", "flush_at_exit"]

EXIT_FLUSH_SECONDS = 2.0
"""The most time spent sending open jobs' lines at exit (or as an event loop ends)."""

log = logging.getLogger("emit_push")


def _drive(flow: Delivery, run: Callable[[Call[Any]], Any]) -> None:
    """Run a delivery's calls, one after the other, with a sync runner."""
    answer: Any = None
    error: Exception | None = None
    while True:
        try:
            call = flow.send(answer) if error is None else flow.throw(error)
        except StopIteration:
            return
        try:
            answer, error = run(call), None
        except Exception as exc:
            answer, error = None, exc


async def _adrive(flow: Delivery, run: Callable[[Call[Any]], Awaitable[Any]]) -> None:
    """Run a delivery's calls, one after the other, with an async runner."""
    answer: Any = None
    error: Exception | None = None
    while True:
        try:
            call = flow.send(answer) if error is None else flow.throw(error)
        except StopIteration:
            return
        try:
            answer, error = await run(call), None
        except Exception as exc:
            answer, error = None, exc


# -- sync ------------------------------------------------------------------------------

# Module state, unlike everything else: an atexit hook has no instance to hang off. It
# holds the sync shippers with entries waiting, weakly, and is hooked on first use.
_open: weakref.WeakSet[ThreadShipper] = weakref.WeakSet()
_open_lock = threading.Lock()
_hooked = False


def _track(shipper: ThreadShipper) -> None:
    global _hooked
    with _open_lock:
        if not _hooked:
            atexit.register(flush_at_exit)
            _hooked = True
        _open.add(shipper)


def _untrack(shipper: ThreadShipper) -> None:
    with _open_lock:
        _open.discard(shipper)


def flush_at_exit(timeout: float | None = None) -> None:
    """Send what open sync jobs still hold, for at most ``timeout`` seconds in all.

    The jobs' own shipper threads send (no new thread may start at exit on Python 3.12+):
    each is told to try once now, and this waits for them until the time is up.
    """
    with _open_lock:
        shippers = [s for s in _open if s.unsent()]
    if not shippers:
        return
    deadline = time.monotonic() + (EXIT_FLUSH_SECONDS if timeout is None else timeout)
    for shipper in shippers:
        shipper.hurry()
    while any(s.unsent() for s in shippers) and time.monotonic() < deadline:
        time.sleep(0.01)
    lost = sum(shipper.give_up() for shipper in shippers)
    if lost:
        log.warning(
            "lost %d log entries: the program exited before they could be sent "
            "(close jobs, or use them as context managers, to send them in time)",
            lost,
        )


class ThreadShipper:
    """Ships from a daemon thread that lives while entries wait."""

    def __init__(
        self,
        buffer: LogBuffer,
        run: Callable[[Call[Any]], Any],
        deliver: Callable[[Batch], Delivery],
        interval: float,
        name: str,
    ) -> None:
        self._buffer = buffer
        self._run_call = run
        self._deliver = deliver
        self._name = name
        self._pacing = Pacing(interval)
        self._wake = threading.Event()
        self._flushing = threading.Lock()
        self._thread: threading.Thread | None = None
        self._hurry = False

    def notify(self, signal: int) -> None:
        if signal != START:
            self._wake.set()
            return
        _track(self)
        thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        try:
            thread.start()
        except RuntimeError:  # no threads left: the next entry (or close) sends
            self._buffer.deactivate()
        else:
            self._thread = thread

    def unsent(self) -> int:
        return self._buffer.unsent()

    def hurry(self) -> None:
        """Try once more now, backoff or not (at exit); without a thread, send from here."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            self.flush()
            return
        self._hurry = True
        self._pacing.succeeded()
        self._wake.set()

    def _run(self) -> None:
        try:
            while True:
                self._pause()
                self.flush()
                if self._buffer.retire():
                    _untrack(self)
                    return
        except BaseException:  # never expected; let the next entry start a new thread
            self._buffer.deactivate()
            raise

    def _pause(self) -> None:
        """Wait out the interval or the backoff; a wake-up ends only the interval."""
        pacing = self._pacing
        deadline = time.monotonic() + pacing.pause(time.monotonic())
        while (left := deadline - time.monotonic()) > 0 and not self._hurry:
            woke = self._wake.wait(left)
            self._wake.clear()
            if woke and not pacing.backing_off(time.monotonic()):
                break
        self._hurry = False

    def flush(self) -> bool:
        """Send everything that waits; False when a batch failed and was put back."""
        with self._flushing:
            while (batch := self._buffer.take()) is not None:
                try:
                    _drive(self._deliver(batch), self._run_call)
                except Exception as exc:
                    if not self._buffer.settle(batch, exc):
                        self._pacing.failed(exc, time.monotonic())
                        return False
                else:
                    self._buffer.settle(batch, None)
                    if self._pacing.succeeded():
                        self._wake.set()  # the thread may be backing off: no need now
            return True

    def give_up(self) -> int:
        """Count what is still unsent, in flight included, as lost (at exit)."""
        return self._buffer.abandon(None, sending=True)

    def close(self) -> None:
        """Flush; what still cannot be sent is counted as lost."""
        if not self.flush():
            self._buffer.abandon()
        self._pacing.succeeded()  # nothing waits: the thread need not back off
        _untrack(self)
        self._wake.set()  # the thread, if any, finds nothing and retires
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self._pacing.interval)


# -- async -----------------------------------------------------------------------------


class TaskShipper:
    """Ships from an asyncio task on the loop the job is used on.

    ``notify`` may be called from any thread (sync handlers log from worker threads).
    """

    def __init__(
        self,
        buffer: LogBuffer,
        run: Callable[[Call[Any]], Awaitable[Any]],
        deliver: Callable[[Batch], Delivery],
        interval: float,
        name: str,
    ) -> None:
        self._buffer = buffer
        self._run_call = run
        self._deliver = deliver
        self._name = name
        self._pacing = Pacing(interval)
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        with contextlib.suppress(RuntimeError):  # else bound by the first entry on a loop
            self._adopt(asyncio.get_running_loop())

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        """Ship on ``loop`` from now on; the old loop, if any, has ended."""
        if self._loop is not None:  # the primitives belong to the old loop
            self._wake, self._flushing = asyncio.Event(), asyncio.Lock()
        self._loop, self._thread, self._task = loop, threading.get_ident(), None

    def _here(self) -> bool:
        """Whether this thread runs the loop to ship on (adopting it if the old one ended)."""
        loop = self._loop
        if threading.get_ident() == self._thread and loop and loop.is_running():
            return True
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return False
        old = self._loop
        if old is not running and (old is None or old.is_closed() or not old.is_running()):
            self._adopt(running)
        return running is self._loop

    def notify(self, signal: int) -> None:
        if self._here():
            self._on_loop(signal)
            return
        loop = self._loop
        if loop is not None and loop.is_running() and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._on_loop, signal)
                return
            except RuntimeError:  # closed meanwhile
                pass
        if signal == START:
            self._buffer.deactivate()  # no loop to ship on: the next entry tries again

    def _on_loop(self, signal: int) -> None:
        task = self._task
        if signal != START and task is not None and not task.done():
            self._wake.set()
            return
        # START, or entries wait with no task (its loop ended): start one.
        assert self._loop is not None
        run = self._run()
        try:
            self._task = self._loop.create_task(run, name=self._name)
        except RuntimeError:  # the loop is closing
            run.close()
            self._buffer.deactivate()

    async def _run(self) -> None:
        try:
            while True:
                await self._pause()
                await self.flush()
                if self._buffer.retire():
                    return
        except asyncio.CancelledError:
            await self._last_flush()
            raise
        except BaseException:  # never expected; let the next entry start a new task
            self._buffer.deactivate()
            raise
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def _pause(self) -> None:
        """Wait out the interval or the backoff; a wake-up ends only the interval."""
        pacing = self._pacing
        deadline = time.monotonic() + pacing.pause(time.monotonic())
        while (left := deadline - time.monotonic()) > 0:
            try:
                async with asyncio.timeout(left):
                    await self._wake.wait()
            except TimeoutError:
                return
            self._wake.clear()
            if not pacing.backing_off(time.monotonic()):
                return

    async def _last_flush(self) -> None:
        """The task is cancelled (its loop is ending) with the job still open."""
        try:
            if self._buffer.unsent():
                async with asyncio.timeout(EXIT_FLUSH_SECONDS):
                    await self.flush()
        except (Exception, asyncio.CancelledError):
            pass
        self._buffer.abandon("the event loop ended before the job was closed")
        self._buffer.deactivate()

    async def flush(self) -> bool:
        """Send everything that waits; False when a batch failed and was put back."""
        self._here()
        async with self._flushing:
            while (batch := self._buffer.take()) is not None:
                try:
                    await _adrive(self._deliver(batch), self._run_call)
                except asyncio.CancelledError:
                    batch.in_doubt = True  # it may have been sent: check before resending
                    self._buffer.restore(batch)
                    raise
                except Exception as exc:
                    if not self._buffer.settle(batch, exc):
                        self._pacing.failed(exc, time.monotonic())
                        return False
                else:
                    self._buffer.settle(batch, None)
                    if self._pacing.succeeded():
                        self._wake.set()  # the task may be backing off: no need now
            return True

    async def aclose(self) -> None:
        """Flush; what still cannot be sent is counted as lost."""
        if not await self.flush():
            self._buffer.abandon()
        self._pacing.succeeded()  # nothing waits: the task need not back off
        self._wake.set()  # the task, if any, finds nothing and retires
        task = self._task
        if (
            task is not None
            and task is not asyncio.current_task()
            and task.get_loop() is asyncio.get_running_loop()
        ):
            await asyncio.wait({task}, timeout=self._pacing.interval)
