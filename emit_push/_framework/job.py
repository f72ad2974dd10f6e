"""``Job`` and ``SyncJob``: what a handler receives, generic in its payload type.

Both are the SDK's claimed-job helpers with what a running handler also needs: the
deadline (``job.deadline``, ``job.remaining()``), and a stop that reaches the function.
``Job`` (for ``async def``) is an ``AsyncClaimedJob``; ``SyncJob`` (for ``def``, run in a
worker thread) is a ``ClaimedJob`` whose every call runs on the event loop through the
``Job`` it mirrors: one connection pool, one logger, one record of what happened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from typing_extensions import TypeVar as DefaultTypeVar

from .._exceptions import JobKilledError
from .._sdk.claimed import AsyncClaimedJob, ClaimedJob

if TYPE_CHECKING:
    from .._logs.logger import LoggerOptions
    from .._sdk.claimed import AsyncRunner
    from .._wire.endpoints import Call
    from .._wire.models import JobDescriptor

__all__ = ["Job", "RunState", "SyncJob"]

P = DefaultTypeVar("P", default=Any)
T = TypeVar("T")


class RunState:
    """What the views of one run share: the deadline, and how the run has ended so far."""

    # A plain class: a dataclass's generated methods would be built at every cold start.
    __slots__ = ("acked", "claimed_at", "deadline", "on_killed", "settled", "stopped")

    def __init__(
        self,
        deadline: float | None = None,
        settled: str | None = None,
        stopped: BaseException | None = None,
        on_killed: Callable[[], object] = lambda: None,
    ) -> None:
        self.deadline = deadline
        """``time.monotonic()`` by which the run must be over; None: no deadline."""
        self.settled = settled
        """``completed``/``failed``/``killed`` once the handler itself settled the job."""
        self.stopped = stopped
        """Why the run was stopped (killed, deadline); later calls raise it."""
        self.on_killed = on_killed
        self.claimed_at = time.monotonic()
        """About when the job was claimed (the run starts right after)."""
        self.acked = False
        """Whether this run acknowledged the job (``delivered`` → ``running``)."""

    def __repr__(self) -> str:
        return (
            f"RunState(deadline={self.deadline!r}, settled={self.settled!r}, "
            f"stopped={self.stopped!r})"
        )

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()


class Job(AsyncClaimedJob[P]):
    """The job an ``async def`` handler receives; ``Job[Model]`` types its payload.

    @app.on_job("transcode")
    async def transcode(job: Job[Transcode]) -> dict:
        job.log.info("starting", metadata={"attempt": job.attempt_number})
        await job.progress(10, "Downloading source")
        return {"outputUrl": f"s3://final/{job.payload.output_key}"}
    """

    __slots__ = ("_state",)

    def __init__(
        self,
        runner: AsyncRunner,
        descriptor: JobDescriptor,
        *,
        logger: LoggerOptions | None = None,
        state: RunState | None = None,
    ) -> None:
        super().__init__(runner, descriptor, logger=logger)
        self._state = state or RunState()

    @property
    def deadline(self) -> datetime | None:
        """When this run must be over (UTC), or None when nothing limits it."""
        return _wall(self._state)

    def remaining(self) -> float | None:
        """Seconds left before the deadline (negative once passed), or None."""
        return self._state.remaining()

    async def _run(self, call: Call[T]) -> T:
        if self._state.stopped is not None:
            raise self._state.stopped
        try:
            answer = await super()._run(call)
        except JobKilledError as exc:
            if self._state.stopped is None:
                self._state.stopped = exc
                self._state.on_killed()
            raise
        if call.effect == "ack":
            self._state.acked = True
        elif call.effect is not None:
            self._state.settled = call.effect
        return answer


class SyncJob(ClaimedJob[P]):
    """The job a ``def`` handler receives; ``SyncJob[Model]`` types its payload.

    Calls block the handler's thread while they run on the event loop. Once the job is
    killed or its deadline passed, the next call raises (``JobKilledError`` or
    ``DeadlineExceeded``): that is how a sync function learns it should stop.

    @app.on_job("resize")
    def resize(job: SyncJob[Resize]) -> dict:
        job.progress(50, "halfway")
        return {"ok": True}
    """

    __slots__ = ("_job", "_loop")

    def __init__(self, job: Job[P], loop: asyncio.AbstractEventLoop) -> None:
        # Not ClaimedJob.__init__: this view shares the async job's core (logger, state).
        self._core = job._core
        self._runner = _LoopRunner(job, loop)
        self.payload = job.payload
        self._job = job
        self._loop = loop

    @property
    def deadline(self) -> datetime | None:
        """When this run must be over (UTC), or None when nothing limits it."""
        return _wall(self._job._state)

    def remaining(self) -> float | None:
        """Seconds left before the deadline (negative once passed), or None."""
        return self._job._state.remaining()

    def flush(self) -> None:
        """Send the buffered ``job.log`` entries now (the logger keeps working)."""
        self._on_loop(self._job.flush())

    def close(self) -> None:
        """Send every buffered log entry. Never raises."""
        self._on_loop(self._job.aclose())

    def _on_loop(self, coroutine: Any) -> Any:
        try:
            _off_loop(self._loop)
        except RuntimeError:
            coroutine.close()
            raise
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()


class _LoopRunner:
    """Runs a sync job's calls as the async job's calls, on the loop."""

    def __init__(self, job: Job[Any], loop: asyncio.AbstractEventLoop) -> None:
        self._job = job
        self._loop = loop

    def send(self, call: Call[T]) -> T:
        if self._job._state.stopped is not None:  # fail fast, without a trip to the loop
            raise self._job._state.stopped
        _off_loop(self._loop)
        future = asyncio.run_coroutine_threadsafe(self._job._run(call), self._loop)
        return future.result()


def _off_loop(loop: asyncio.AbstractEventLoop) -> None:
    """A SyncJob call from the loop's own thread would wait for itself forever."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return
    if running is loop:
        raise RuntimeError(
            "a SyncJob was called from async code on its event loop; use the async Job there"
        )


def _wall(state: RunState) -> datetime | None:
    remaining = state.remaining()
    if remaining is None:
        return None
    return datetime.fromtimestamp(time.time() + remaining, UTC)
