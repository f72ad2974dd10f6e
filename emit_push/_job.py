"""The claimed-job helper: what ``poll`` and ``claim`` hand to worker code.

``AsyncClaimedJob`` is for async code (``await job.progress(...)``), ``ClaimedJob`` is its
sync facade (``job.progress(...)``). Both are views over one ``_Core`` (the descriptor, the
logger and the kill flag) and send the calls of ``_endpoints``; they differ only in the
runner that drives those calls and in how ``job.log`` ships, so neither copies logic.

Both are generic in the payload type: ``AsyncClaimedJob[Resize]`` has a ``Resize`` payload
(``with_payload`` makes the typed view), ``AsyncClaimedJob`` alone an ``Any`` one. The
names leave ``Job`` free for the framework's typed handler argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, Self, TypeVar

from typing_extensions import TypeVar as DefaultTypeVar

from ._exceptions import JobKilledError

# The job classes are defined at import (``Job`` subclasses them); what a job does is
# imported when a job is made or a call is built: the endpoints, the models, the logger
# and its shippers come with a worker's first job, not with its import.
if TYPE_CHECKING:
    from ._delivery import Delivery
    from ._endpoints import Call
    from ._logger import Batch, JobLogger, LoggerOptions
    from ._models import JobDescriptor, JobDetails, JobProgress, JobState, LogPage
    from ._shipping import TaskShipper, ThreadShipper

__all__ = ["AsyncClaimedJob", "AsyncRunner", "ClaimedJob", "SyncRunner"]

P = DefaultTypeVar("P", default=Any)
Q = TypeVar("Q")
T = TypeVar("T")


class SyncRunner(Protocol):
    """Runs a call and returns its answer (``EmitClient``'s driver is one)."""

    def run(self, call: Call[T]) -> T: ...


class AsyncRunner(Protocol):
    """Runs a call and returns its answer (``AsyncEmitClient``'s driver is one)."""

    async def run(self, call: Call[T]) -> T: ...


class _Core:
    """What every view of one claimed job shares: descriptor, logger, kill flag."""

    __slots__ = ("descriptor", "killed", "log", "shipper")

    def __init__(
        self,
        descriptor: JobDescriptor,
        runner: SyncRunner | AsyncRunner,
        options: LoggerOptions | None,
        shipper_type: type[ThreadShipper] | type[TaskShipper],
    ) -> None:
        from ._delivery import LogCursor, deliver
        from ._logger import JobLogger, LogBuffer, LoggerOptions

        options = options or LoggerOptions()
        buffer = LogBuffer(options)
        job_id, gzip, cursor = descriptor.id, options.gzip, LogCursor()

        def delivery(batch: Batch) -> Delivery:
            return deliver(job_id, batch, cursor, gzip=gzip)

        self.descriptor = descriptor
        self.shipper = shipper_type(
            buffer, runner.run, delivery, options.flush_interval, f"emit-log-{job_id}"
        )
        self.log = JobLogger(buffer, self.shipper.notify, options.source)
        self.killed = False


class _JobView(Generic[P]):
    __slots__ = ("_core", "_runner", "payload")

    payload: P
    """The job's payload: parsed JSON, or the typed value given to ``with_payload``."""

    def __init__(self, core: _Core, runner: Any, payload: P) -> None:
        self._core = core
        self._runner = runner
        self.payload = payload

    @property
    def id(self) -> str:
        """The job's id."""
        return self._core.descriptor.id

    @property
    def name(self) -> str:
        """The job's type, e.g. ``"send-email"``."""
        return self._core.descriptor.name

    @property
    def attempt_number(self) -> int:
        """0 on the first attempt, +1 per retry."""
        return self._core.descriptor.attempt_number

    @property
    def max_retries(self) -> int:
        """How many retries the job has in all."""
        return self._core.descriptor.max_retries

    @property
    def timeout_seconds(self) -> int:
        """The inactivity window: progress, checkpoint and keepalive re-arm it."""
        return self._core.descriptor.timeout_seconds

    @property
    def created_at(self) -> datetime | None:
        """When the job was created."""
        return self._core.descriptor.created_at

    @property
    def descriptor(self) -> JobDescriptor:
        """The descriptor as the service sent it (unknown fields kept)."""
        return self._core.descriptor

    @property
    def log(self) -> JobLogger:
        """The job's batched logger: ``job.log.info("...", metadata={...})``."""
        return self._core.log

    @property
    def killed(self) -> bool:
        """True once a call learned that the job was killed (``JobKilledError``)."""
        return self._core.killed

    def _view(self, payload: object) -> Any:
        view: Any = object.__new__(type(self))
        view._core, view._runner, view.payload = self._core, self._runner, payload
        return view

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(id={self.id!r}, name={self.name!r}, "
            f"attempt_number={self.attempt_number})"
        )


class AsyncClaimedJob(_JobView[P]):
    """A job this worker has claimed, for async code.

    for job in await client.jobs.poll(types="resize"):
        async with job:                       # closing flushes job.log
            await job.ack()
            job.log.info("starting")
            await job.progress(50, "halfway")
            await job.complete({"ok": True})
    """

    __slots__ = ()
    _runner: AsyncRunner

    def __init__(
        self,
        runner: AsyncRunner,
        descriptor: JobDescriptor,
        *,
        logger: LoggerOptions | None = None,
    ) -> None:
        from ._shipping import TaskShipper

        super().__init__(_Core(descriptor, runner, logger, TaskShipper), runner, descriptor.payload)

    def with_payload(self, payload: Q) -> AsyncClaimedJob[Q]:
        """This job, sharing its logger and state, with ``payload`` as its typed payload."""
        view: AsyncClaimedJob[Q] = self._view(payload)
        return view

    async def _run(self, call: Call[T]) -> T:
        try:
            return await self._runner.run(call)
        except JobKilledError:
            self._core.killed = True
            raise

    async def _flushed(self) -> None:
        from ._shipping import TaskShipper  # loaded with the job

        assert isinstance(self._core.shipper, TaskShipper)
        await self._core.shipper.flush()

    async def ack(self) -> JobState:
        """Start running the job (``delivered`` → ``running``)."""
        from . import _endpoints as ep

        return await self._run(ep.ack(self.id, self.attempt_number))

    async def progress(
        self, percent: float, message: str, sub_progress: Mapping[str, Any] | None = None
    ) -> JobState:
        """Report progress (0-100); re-arms the timeout."""
        from . import _endpoints as ep

        return await self._run(ep.progress(self.id, percent, message, sub_progress))

    async def checkpoint(self, data: Mapping[str, Any]) -> JobState:
        """Store ``data`` as the job's checkpoint; re-arms the timeout."""
        from . import _endpoints as ep

        return await self._run(ep.checkpoint(self.id, data))

    async def event(self, data: Mapping[str, Any]) -> JobState:
        """Record a custom event."""
        from . import _endpoints as ep

        return await self._run(ep.event(self.id, data))

    async def keepalive(self) -> JobState:
        """Re-arm the timeout."""
        from . import _endpoints as ep

        return await self._run(ep.keepalive(self.id))

    async def complete(self, result: Any = None) -> JobState:
        """Send the logs, then finish the job with ``result``."""
        from . import _endpoints as ep

        await self._flushed()
        return await self._run(ep.complete(self.id, result, self.attempt_number))

    async def fail(self, error: str | BaseException) -> JobState:
        """Send the logs, then fail this attempt; the job retries while it has retries."""
        from . import _endpoints as ep

        await self._flushed()
        return await self._run(ep.fail(self.id, error, self.attempt_number))

    async def kill(self, reason: str | None = None) -> JobState:
        """Send the logs, then stop the job for good."""
        from . import _endpoints as ep

        await self._flushed()
        return await self._run(ep.kill(self.id, reason))

    async def get_details(self) -> JobDetails:
        """The job as the service has it now, with its event history."""
        from . import _endpoints as ep

        return await self._run(ep.get(self.id))

    async def get_progress(self) -> JobProgress:
        """The job's latest progress."""
        from . import _endpoints as ep

        return await self._run(ep.get_progress(self.id))

    async def get_logs(
        self,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
        level: str | None = None,
        q: str | None = None,
    ) -> LogPage:
        """A page of the job's logs, oldest first (see ``client.jobs.logs``)."""
        from . import _endpoints as ep

        query = ep.logs(self.id, after=after, before=before, limit=limit, level=level, q=q)
        return await self._run(query)

    async def aclose(self) -> None:
        """Send every buffered log entry. Never raises."""
        from ._shipping import TaskShipper  # loaded with the job

        assert isinstance(self._core.shipper, TaskShipper)
        await self._core.shipper.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class ClaimedJob(_JobView[P]):
    """A job this worker has claimed, for sync code; see ``AsyncClaimedJob``.

    for job in client.jobs.poll(types="resize"):
        with job:                             # closing flushes job.log
            job.ack()
            job.log.info("starting")
            job.complete({"ok": True})
    """

    __slots__ = ()
    _runner: SyncRunner

    def __init__(
        self,
        runner: SyncRunner,
        descriptor: JobDescriptor,
        *,
        logger: LoggerOptions | None = None,
    ) -> None:
        from ._shipping import ThreadShipper

        super().__init__(
            _Core(descriptor, runner, logger, ThreadShipper), runner, descriptor.payload
        )

    def with_payload(self, payload: Q) -> ClaimedJob[Q]:
        """This job, sharing its logger and state, with ``payload`` as its typed payload."""
        view: ClaimedJob[Q] = self._view(payload)
        return view

    def _run(self, call: Call[T]) -> T:
        try:
            return self._runner.run(call)
        except JobKilledError:
            self._core.killed = True
            raise

    def _flushed(self) -> None:
        from ._shipping import ThreadShipper  # loaded with the job

        assert isinstance(self._core.shipper, ThreadShipper)
        self._core.shipper.flush()

    def ack(self) -> JobState:
        """Start running the job (``delivered`` → ``running``)."""
        from . import _endpoints as ep

        return self._run(ep.ack(self.id, self.attempt_number))

    def progress(
        self, percent: float, message: str, sub_progress: Mapping[str, Any] | None = None
    ) -> JobState:
        """Report progress (0-100); re-arms the timeout."""
        from . import _endpoints as ep

        return self._run(ep.progress(self.id, percent, message, sub_progress))

    def checkpoint(self, data: Mapping[str, Any]) -> JobState:
        """Store ``data`` as the job's checkpoint; re-arms the timeout."""
        from . import _endpoints as ep

        return self._run(ep.checkpoint(self.id, data))

    def event(self, data: Mapping[str, Any]) -> JobState:
        """Record a custom event."""
        from . import _endpoints as ep

        return self._run(ep.event(self.id, data))

    def keepalive(self) -> JobState:
        """Re-arm the timeout."""
        from . import _endpoints as ep

        return self._run(ep.keepalive(self.id))

    def complete(self, result: Any = None) -> JobState:
        """Send the logs, then finish the job with ``result``."""
        from . import _endpoints as ep

        self._flushed()
        return self._run(ep.complete(self.id, result, self.attempt_number))

    def fail(self, error: str | BaseException) -> JobState:
        """Send the logs, then fail this attempt; the job retries while it has retries."""
        from . import _endpoints as ep

        self._flushed()
        return self._run(ep.fail(self.id, error, self.attempt_number))

    def kill(self, reason: str | None = None) -> JobState:
        """Send the logs, then stop the job for good."""
        from . import _endpoints as ep

        self._flushed()
        return self._run(ep.kill(self.id, reason))

    def get_details(self) -> JobDetails:
        """The job as the service has it now, with its event history."""
        from . import _endpoints as ep

        return self._run(ep.get(self.id))

    def get_progress(self) -> JobProgress:
        """The job's latest progress."""
        from . import _endpoints as ep

        return self._run(ep.get_progress(self.id))

    def get_logs(
        self,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
        level: str | None = None,
        q: str | None = None,
    ) -> LogPage:
        """A page of the job's logs, oldest first (see ``client.jobs.logs``)."""
        from . import _endpoints as ep

        query = ep.logs(self.id, after=after, before=before, limit=limit, level=level, q=q)
        return self._run(query)

    def close(self) -> None:
        """Send every buffered log entry. Never raises."""
        from ._shipping import ThreadShipper  # loaded with the job

        assert isinstance(self._core.shipper, ThreadShipper)
        self._core.shipper.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
