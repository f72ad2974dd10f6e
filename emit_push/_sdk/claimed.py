"""The claimed-job helper: what ``poll`` and ``claim`` hand to worker code.

``AsyncClaimedJob`` is for async code (``await job.progress(...)``), ``ClaimedJob`` is its
sync facade (``job.progress(...)``). Both are views over one ``view.JobCore`` (the
descriptor, the logger and the kill flag) and send the calls of ``_wire.endpoints``; they
differ only in the runner that drives those calls and in how ``job.log`` ships, so
neither copies logic.

Both are generic in the payload type: ``AsyncClaimedJob[Resize]`` has a ``Resize`` payload
(``with_payload`` makes the typed view), ``AsyncClaimedJob`` alone an ``Any`` one. The
names leave ``Job`` free for the framework's typed handler argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from typing_extensions import TypeVar as DefaultTypeVar

from .._exceptions import JobKilledError
from .view import AsyncRunner, JobCore, JobView, SyncRunner, earlier_checkpoint

# The job classes are defined at import (``Job`` subclasses them); what a job does is
# imported when a job is made or a call is built: the endpoints, the models, the logger
# and its shippers come with a worker's first job, not with its import.
if TYPE_CHECKING:
    from .._logs.logger import LoggerOptions
    from .._wire.endpoints import Call
    from .._wire.models import JobDescriptor, JobDetails, JobProgress, JobState, LogPage

__all__ = ["AsyncClaimedJob", "AsyncRunner", "ClaimedJob", "SyncRunner"]

P = DefaultTypeVar("P", default=Any)
Q = TypeVar("Q")
T = TypeVar("T")


class AsyncClaimedJob(JobView[P]):
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
        from .._logs.shipping import TaskShipper

        super().__init__(
            JobCore(descriptor, runner, logger, TaskShipper), runner, descriptor.payload
        )

    def with_payload(self, payload: Q) -> AsyncClaimedJob[Q]:
        """This job, sharing its logger and state, with ``payload`` as its typed payload."""
        view: AsyncClaimedJob[Q] = self._view(payload)
        return view

    async def _run(self, call: Call[T]) -> T:
        try:
            return await self._runner.send(call)
        except JobKilledError:
            self._core.killed = True
            raise

    async def flush(self) -> None:
        """Send the buffered ``job.log`` entries now (the logger keeps working)."""
        from .._logs.shipping import TaskShipper  # loaded with the job

        assert isinstance(self._core.shipper, TaskShipper)
        await self._core.shipper.flush()

    async def ack(self) -> JobState:
        """Start running the job (``delivered`` → ``running``)."""
        from .._wire import endpoints as ep

        return await self._run(ep.ack(self.id, self.attempt_number))

    async def progress(
        self, percent: float, message: str, sub_progress: Mapping[str, Any] | None = None
    ) -> JobState:
        """Report progress (0-100); re-arms the timeout."""
        from .._wire import endpoints as ep

        return await self._run(ep.progress(self.id, percent, message, sub_progress))

    async def checkpoint(self, data: Mapping[str, Any]) -> JobState:
        """Store ``data`` as the job's checkpoint; re-arms the timeout."""
        from .._wire import endpoints as ep

        return await self._run(ep.checkpoint(self.id, data))

    async def event(self, data: Mapping[str, Any]) -> JobState:
        """Record a custom event."""
        from .._wire import endpoints as ep

        return await self._run(ep.event(self.id, data))

    async def keepalive(self) -> JobState:
        """Re-arm the timeout."""
        from .._wire import endpoints as ep

        return await self._run(ep.keepalive(self.id))

    async def complete(self, result: Any = None) -> JobState:
        """Send the logs, then finish the job with ``result``."""
        from .._wire import endpoints as ep

        await self.flush()
        return await self._run(ep.complete(self.id, result, self.attempt_number))

    async def fail(self, error: str | BaseException) -> JobState:
        """Send the logs, then fail this attempt; the job retries while it has retries."""
        from .._wire import endpoints as ep

        await self.flush()
        return await self._run(ep.fail(self.id, error, self.attempt_number))

    async def kill(self, reason: str | None = None) -> JobState:
        """Send the logs, then stop the job for good."""
        from .._wire import endpoints as ep

        await self.flush()
        return await self._run(ep.kill(self.id, reason))

    async def get_details(self) -> JobDetails:
        """The job as the service has it now, with its event history."""
        from .._wire import endpoints as ep

        return await self._run(ep.get(self.id))

    async def get_progress(self) -> JobProgress:
        """The job's latest progress."""
        from .._wire import endpoints as ep

        return await self._run(ep.get_progress(self.id))

    async def last_checkpoint(self) -> dict[str, Any] | None:
        """The data of the last checkpoint an earlier attempt stored: where a retry
        resumes from. None on a first attempt, or when no attempt stored one.

        A retry reads it from the job's history, once (one ``get_details()``); a first
        attempt makes no call. The value is kept: this attempt's own checkpoints do not
        change it.

            resume = await job.last_checkpoint() or {"offset": 0}
        """
        core = self._core
        if core.last_checkpoint is None:
            details = await self.get_details() if self.attempt_number > 0 else None
            core.last_checkpoint = (earlier_checkpoint(details, self.attempt_number),)
        return core.last_checkpoint[0]

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
        from .._wire import endpoints as ep

        query = ep.logs(self.id, after=after, before=before, limit=limit, level=level, q=q)
        return await self._run(query)

    async def aclose(self) -> None:
        """Send every buffered log entry. Never raises."""
        from .._logs.shipping import TaskShipper  # loaded with the job

        assert isinstance(self._core.shipper, TaskShipper)
        await self._core.shipper.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class ClaimedJob(JobView[P]):
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
        from .._logs.shipping import ThreadShipper

        super().__init__(
            JobCore(descriptor, runner, logger, ThreadShipper), runner, descriptor.payload
        )

    def with_payload(self, payload: Q) -> ClaimedJob[Q]:
        """This job, sharing its logger and state, with ``payload`` as its typed payload."""
        view: ClaimedJob[Q] = self._view(payload)
        return view

    def _run(self, call: Call[T]) -> T:
        try:
            return self._runner.send(call)
        except JobKilledError:
            self._core.killed = True
            raise

    def flush(self) -> None:
        """Send the buffered ``job.log`` entries now (the logger keeps working)."""
        from .._logs.shipping import ThreadShipper  # loaded with the job

        assert isinstance(self._core.shipper, ThreadShipper)
        self._core.shipper.flush()

    def ack(self) -> JobState:
        """Start running the job (``delivered`` → ``running``)."""
        from .._wire import endpoints as ep

        return self._run(ep.ack(self.id, self.attempt_number))

    def progress(
        self, percent: float, message: str, sub_progress: Mapping[str, Any] | None = None
    ) -> JobState:
        """Report progress (0-100); re-arms the timeout."""
        from .._wire import endpoints as ep

        return self._run(ep.progress(self.id, percent, message, sub_progress))

    def checkpoint(self, data: Mapping[str, Any]) -> JobState:
        """Store ``data`` as the job's checkpoint; re-arms the timeout."""
        from .._wire import endpoints as ep

        return self._run(ep.checkpoint(self.id, data))

    def event(self, data: Mapping[str, Any]) -> JobState:
        """Record a custom event."""
        from .._wire import endpoints as ep

        return self._run(ep.event(self.id, data))

    def keepalive(self) -> JobState:
        """Re-arm the timeout."""
        from .._wire import endpoints as ep

        return self._run(ep.keepalive(self.id))

    def complete(self, result: Any = None) -> JobState:
        """Send the logs, then finish the job with ``result``."""
        from .._wire import endpoints as ep

        self.flush()
        return self._run(ep.complete(self.id, result, self.attempt_number))

    def fail(self, error: str | BaseException) -> JobState:
        """Send the logs, then fail this attempt; the job retries while it has retries."""
        from .._wire import endpoints as ep

        self.flush()
        return self._run(ep.fail(self.id, error, self.attempt_number))

    def kill(self, reason: str | None = None) -> JobState:
        """Send the logs, then stop the job for good."""
        from .._wire import endpoints as ep

        self.flush()
        return self._run(ep.kill(self.id, reason))

    def get_details(self) -> JobDetails:
        """The job as the service has it now, with its event history."""
        from .._wire import endpoints as ep

        return self._run(ep.get(self.id))

    def get_progress(self) -> JobProgress:
        """The job's latest progress."""
        from .._wire import endpoints as ep

        return self._run(ep.get_progress(self.id))

    def last_checkpoint(self) -> dict[str, Any] | None:
        """The data of the last checkpoint an earlier attempt stored, read once on a
        retry (see ``AsyncClaimedJob.last_checkpoint``).

            resume = job.last_checkpoint() or {"offset": 0}
        """
        core = self._core
        if core.last_checkpoint is None:
            details = self.get_details() if self.attempt_number > 0 else None
            core.last_checkpoint = (earlier_checkpoint(details, self.attempt_number),)
        return core.last_checkpoint[0]

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
        from .._wire import endpoints as ep

        query = ep.logs(self.id, after=after, before=before, limit=limit, level=level, q=q)
        return self._run(query)

    def close(self) -> None:
        """Send every buffered log entry. Never raises."""
        from .._logs.shipping import ThreadShipper  # loaded with the job

        assert isinstance(self._core.shipper, ThreadShipper)
        self._core.shipper.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
