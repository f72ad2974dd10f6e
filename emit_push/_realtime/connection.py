"""The connection objects of realtime streams: a thread (sync client) or a task (async).

Both run the same :class:`~.driver.StreamRunner` on asyncio; they differ only in
where its loop lives and in how ``close`` waits for it. A caller's stop event is watched
here: an ``asyncio.Event`` of the stream's own loop is awaited, anything else (a
``threading.Event``) looked at every ``_POLL`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Protocol

from .driver import TASK_PREFIX, StreamRunner

__all__ = ["AsyncRealtimeConnection", "RealtimeConnection", "StopEvent"]

log = logging.getLogger("emit_push")

_POLL = 0.05  # how often a stop event that cannot be awaited is looked at


class StopEvent(Protocol):
    """``threading.Event`` or ``asyncio.Event``: the stream ends once it is set."""

    def is_set(self) -> bool: ...


async def _watch(user_stop: StopEvent, stop: asyncio.Event, *, can_await: bool) -> None:
    if can_await and isinstance(user_stop, asyncio.Event):
        await user_stop.wait()
    else:  # a threading.Event, or an asyncio.Event of another loop: no way to be woken
        while not user_stop.is_set():
            await asyncio.sleep(_POLL)
    stop.set()


async def _run(
    runner: StreamRunner,
    stop: asyncio.Event,
    user_stop: StopEvent | None,
    on_end: Callable[[], None] | None,
    *,
    can_await: bool,
) -> None:
    watcher = None
    if user_stop is not None:
        watcher = asyncio.get_running_loop().create_task(
            _watch(user_stop, stop, can_await=can_await),
            name=f"{TASK_PREFIX} {runner.session.label}: stop event",
        )
    try:
        await runner.run(stop)
    except Exception as exc:  # a bug: it ends the stream, and shows, but kills no thread
        log.exception("realtime: the %s failed", runner.session.label)
        runner.error = runner.error or exc
    finally:
        if watcher is not None:
            watcher.cancel()
            await asyncio.wait([watcher])
        if on_end is not None:
            on_end()


class _Connection:
    """What both kinds of connection tell about their stream."""

    _runner: StreamRunner

    @property
    def error(self) -> Exception | None:
        """The error that ended the stream (permanent, or any without auto_reconnect)."""
        return self._runner.error

    @property
    def missed(self) -> bool | None:
        """Space stream: whether the latest ``connected`` said events went unseen."""
        return self._runner.session.missed

    @property
    def seq(self) -> int | None:
        """Space stream: the last ``seq`` seen (pass it back as ``since=``)."""
        return self._runner.session.seq

    @property
    def stream_instance_id(self) -> str | None:
        """Space stream: the server instance of ``seq`` (pass it back with it)."""
        return self._runner.session.stream_instance_id

    @property
    def attempts(self) -> int:
        """How many connections were tried so far."""
        return self._runner.session.attempts

    def _state(self, done: bool) -> str:
        return (
            f"<{type(self).__name__} {self._runner.session.label} {'ended' if done else 'running'}>"
        )


class RealtimeConnection(_Connection):
    """A stream of ``EmitClient.realtime``, running in a background thread.

    Callbacks are called from that thread. ``close()`` stops the stream and waits for the
    thread; ``wait()`` waits for the stream to end by itself (a job stream ends when the
    job does). Use it as a context manager to close it on exit.

        with client.realtime.connect_job(job_id, on_event=print) as conn:
            conn.wait(timeout=60)
    """

    def __init__(
        self,
        runner: StreamRunner,
        stop: StopEvent | None = None,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self._runner = runner
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=asyncio.run,
            args=(self._main(stop, on_end),),
            name=f"{TASK_PREFIX} {runner.session.label}",
            daemon=True,  # an endless stream nobody closed must not keep the process alive
        )
        self._thread.start()
        self._ready.wait()

    async def _main(self, user_stop: StopEvent | None, on_end: Callable[[], None] | None) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        await _run(self._runner, self._stop, user_stop, on_end, can_await=False)

    @property
    def done(self) -> bool:
        """Whether the stream has ended."""
        return not self._thread.is_alive()

    def close(self, timeout: float | None = None) -> None:
        """Stop the stream and wait (up to ``timeout`` seconds) for its thread to end.

        Called from a callback (the stream's own thread), it stops without waiting.
        """
        if self._loop is not None and self._stop is not None:
            # A closed loop raises RuntimeError: the stream has ended already.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the stream to end; False if ``timeout`` seconds passed first."""
        self._thread.join(timeout)
        return self.done

    def __enter__(self) -> RealtimeConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return self._state(self.done)


class AsyncRealtimeConnection(_Connection):
    """A stream of ``AsyncEmitClient.realtime``: a task on the running loop.

    ``aclose()`` stops it and waits for the task; ``close()`` only asks it to stop;
    ``wait()`` waits for the stream to end by itself. Also an async context manager.

        async with client.realtime.connect_space(on_event=handle) as conn:
            await stop.wait()
    """

    def __init__(
        self,
        runner: StreamRunner,
        stop: StopEvent | None = None,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "AsyncEmitClient.realtime needs a running event loop: call it from async "
                "code, or use EmitClient"
            ) from None
        self._runner = runner
        self._stop = asyncio.Event()
        self._task = loop.create_task(
            _run(runner, self._stop, stop, on_end, can_await=True),
            name=f"{TASK_PREFIX} {runner.session.label}",
        )

    @property
    def done(self) -> bool:
        """Whether the stream has ended."""
        return self._task.done()

    def close(self) -> None:
        """Ask the stream to stop (``await aclose()`` also waits for it)."""
        self._stop.set()

    async def aclose(self) -> None:
        """Stop the stream and wait for it to end (from a callback: only stop it)."""
        self._stop.set()
        if asyncio.current_task() is not self._task:
            await self._task

    async def wait(self) -> None:
        """Wait for the stream to end (a job stream ends when the job does)."""
        await asyncio.wait([self._task])

    async def __aenter__(self) -> AsyncRealtimeConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return self._state(self.done)
