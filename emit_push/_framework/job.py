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
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from typing_extensions import TypeVar as DefaultTypeVar

from .._exceptions import DeadlineExceeded, JobKilledError
from .._sdk.claimed import AsyncClaimedJob, ClaimedJob

if TYPE_CHECKING:
    from .._logs.logger import LoggerOptions
    from .._sdk.claimed import AsyncRunner
    from .._sdk.client import AsyncClient as Client
    from .._wire.endpoints import Call
    from .._wire.models import JobDescriptor

__all__ = ["Job", "RunSender", "RunState", "SyncJob", "current_job", "flush_until"]

P = DefaultTypeVar("P", default=Any)
T = TypeVar("T")


class RunState:
    """What the views of one run share: the deadline, and how the run has ended so far."""

    # A plain class: a dataclass's generated methods would be built at every cold start.
    __slots__ = (
        "acked", "armed_at", "claimed_at", "idle", "limit", "on_killed", "over", "settled",
        "stopped",
    )  # fmt: skip

    def __init__(
        self,
        limit: float | None = None,
        idle: float | None = None,
        settled: str | None = None,
        stopped: BaseException | None = None,
        on_killed: Callable[[], object] = lambda: None,
    ) -> None:
        self.limit = limit
        """The fixed part of the deadline (``time.monotonic()``): platform, ``max_runtime``."""
        self.idle = idle
        """The service's execution timer, when the run watches it (keepalives off)."""
        self.settled = settled
        """``completed``/``failed``/``killed`` once the handler itself settled the job."""
        self.stopped = stopped
        """Why the run was stopped (killed, deadline, over); later calls raise it."""
        self.on_killed = on_killed
        self.claimed_at = self.armed_at = time.monotonic()
        """About when the job was claimed (the run starts right after)."""
        self.acked = False
        """Whether this run acknowledged the job (``delivered`` → ``running``)."""
        self.over = False
        """The run is answered: nothing more is sent for it, log lines included."""

    def __repr__(self) -> str:
        return (
            f"RunState(deadline={self.deadline!r}, settled={self.settled!r}, "
            f"stopped={self.stopped!r})"
        )

    @property
    def deadline(self) -> float | None:
        """``time.monotonic()`` by which the run must be over; None: no deadline."""
        from .decisions import run_deadline  # not at import: a refused push needs no run

        return run_deadline(self.limit, self.armed_at, self.idle)

    def rearm(self, at: float) -> None:
        """The service accepted a call sent at ``at`` that re-arms its execution timer."""
        if self.stopped is None and at > self.armed_at:
            self.armed_at = at

    def remaining(self) -> float | None:
        deadline = self.deadline
        return None if deadline is None else deadline - time.monotonic()


class RunSender:
    """Sends one run's calls: retried through transient failures until the run's
    deadline (see ``decisions.retry_until``); once the run is over, refused unsent.

    The job and its logger send through it (``gate``: refused once over); the run's own
    settling calls go through an ungated one.
    """

    __slots__ = ("_client", "_gate", "_state", "_timeout")

    def __init__(
        self, client: Client, state: RunState, timeout_seconds: float, *, gate: bool = True
    ) -> None:
        self._client = client
        self._state = state
        self._timeout = timeout_seconds
        self._gate = gate

    def ungated(self) -> RunSender:
        return RunSender(self._client, self._state, self._timeout, gate=False)

    async def send(self, call: Call[T]) -> T:
        state = self._state
        if self._gate and state.over:
            raise state.stopped or DeadlineExceeded("the run is over")
        from .decisions import retry_until
        from .tracing import call_span

        until = retry_until(time.monotonic(), state.deadline, self._timeout)
        with call_span(call, self._client):  # a child of the run's span, when traced
            return await self._client.send(call, until=until)


async def flush_until(
    flush: Callable[[], Awaitable[bool]],
    until: float,
    over: Callable[[], bool],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> bool:
    """Try ``flush`` until it has sent everything (True), with a backoff from 0.1 s to 5 s,
    while not ``over()`` and until ``until`` (a ``clock()`` time): a wait that would pass
    it is cut short, so that the last try is made at ``until``, not a backoff before."""
    delay = 0.1
    while not over():
        if await flush():
            return True
        left = until - clock()
        if left <= 0:
            break
        await sleep(min(delay, left))
        delay = min(delay * 2, 5.0)
    return False


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

    async def aclose(self) -> None:
        """Send every buffered log entry, through transient failures until the run's
        deadline; what still cannot be sent is counted as lost and warned about."""
        from .._logs.shipping import TaskShipper
        from .decisions import retry_until

        shipper = self._core.shipper
        assert isinstance(shipper, TaskShipper)
        state = self._state
        until = retry_until(time.monotonic(), state.deadline, self.timeout_seconds)
        await flush_until(shipper.flush, until, lambda: state.over)
        await super().aclose()

    async def _run(self, call: Call[T]) -> T:
        state = self._state
        if state.stopped is not None:
            raise state.stopped
        sent_at = time.monotonic()
        try:
            answer = await super()._run(call)
        except JobKilledError as exc:
            if state.stopped is None:
                state.stopped = exc
                state.on_killed()
            raise
        if call.effect == "ack" or call.effect == "alive":  # the service's timer (re)starts
            state.acked = state.acked or call.effect == "ack"
            state.rearm(sent_at)
        elif call.effect is not None:
            state.settled = call.effect
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


def current_job() -> Job[Any] | SyncJob[Any] | None:
    """The job whose function is running here (in its task, or its thread), or None.

    For code the handler calls that was not handed the job: a helper that wants to log
    to it, or to report progress. It is the object the handler itself received.
    """
    from .._logs.bridge import current

    target = current.get()
    return None if target is None else target.job
