"""Shippers: what sends a job logger's batches, a thread for sync code, a task for async.

Both follow the same rules, set by ``LogBuffer``: a shipper starts with the first entry
after an idle spell, waits ``flush_interval`` (or less, when a full batch waits), sends
every waiting batch, and retires once nothing waits. ``flush`` sends what waits now;
batches never go out concurrently, so they arrive in order. Closing flushes, and gives up
(counting the loss) only when the service stays unreachable.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from ._logger import START, Batch, LogBuffer

__all__ = ["TaskShipper", "ThreadShipper"]


class ThreadShipper:
    """Ships from a daemon thread that lives while entries wait."""

    def __init__(
        self, buffer: LogBuffer, send: Callable[[Batch], object], interval: float, name: str
    ) -> None:
        self._buffer = buffer
        self._send = send
        self._interval = interval
        self._name = name
        self._wake = threading.Event()
        self._flushing = threading.Lock()
        self._thread: threading.Thread | None = None

    def notify(self, signal: int) -> None:
        if signal != START:
            self._wake.set()
            return
        thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        try:
            thread.start()
        except RuntimeError:  # no threads left: the next entry (or close) sends
            self._buffer.deactivate()
        else:
            self._thread = thread

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait(self._interval)
                self._wake.clear()
                self.flush()
                if self._buffer.retire():
                    return
        except BaseException:  # never expected; let the next entry start a new thread
            self._buffer.deactivate()
            raise

    def flush(self) -> bool:
        """Send everything that waits; False when a batch failed and was put back."""
        with self._flushing:
            while (batch := self._buffer.take()) is not None:
                try:
                    self._send(batch)
                except Exception as exc:
                    if not self._buffer.settle(batch, exc):
                        return False
                else:
                    self._buffer.settle(batch, None)
            return True

    def close(self) -> None:
        """Flush; what still cannot be sent is counted as lost."""
        if not self.flush():
            self._buffer.abandon()
        self._wake.set()  # the thread, if any, finds nothing and retires
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self._interval)


class TaskShipper:
    """Ships from an asyncio task on the loop the job was made on."""

    def __init__(
        self,
        buffer: LogBuffer,
        send: Callable[[Batch], Awaitable[object]],
        interval: float,
        name: str,
    ) -> None:
        self._buffer = buffer
        self._send = send
        self._interval = interval
        self._name = name
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self._bind()

    def _bind(self) -> bool:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._thread = threading.get_ident()
        return True

    def notify(self, signal: int) -> None:
        if threading.get_ident() == self._thread or (self._loop is None and self._bind()):
            self._on_loop(signal)
        elif self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_loop, signal)
        elif signal == START:
            self._buffer.deactivate()  # no loop yet: the next entry tries again

    def _on_loop(self, signal: int) -> None:
        if signal == START:
            assert self._loop is not None
            self._task = self._loop.create_task(self._run(), name=self._name)
        else:
            self._wake.set()

    async def _run(self) -> None:
        try:
            while True:
                try:
                    async with asyncio.timeout(self._interval):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                self._wake.clear()
                await self.flush()
                if self._buffer.retire():
                    return
        except BaseException:  # cancelled (the loop is ending): the next entry starts anew
            self._buffer.deactivate()
            raise
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def flush(self) -> bool:
        """Send everything that waits; False when a batch failed and was put back."""
        async with self._flushing:
            while (batch := self._buffer.take()) is not None:
                try:
                    await self._send(batch)
                except asyncio.CancelledError:
                    self._buffer.restore(batch)
                    raise
                except Exception as exc:
                    if not self._buffer.settle(batch, exc):
                        return False
                else:
                    self._buffer.settle(batch, None)
            return True

    async def aclose(self) -> None:
        """Flush; what still cannot be sent is counted as lost."""
        if not await self.flush():
            self._buffer.abandon()
        self._wake.set()  # the task, if any, finds nothing and retires
        task = self._task
        if task is not None and task is not asyncio.current_task():
            await asyncio.wait({task}, timeout=self._interval)
