"""``client.jobs``: one method per endpoint, each a one-line call into ``_wire.endpoints``.

``Jobs`` (sync) and ``AsyncJobs`` hold no logic of their own: the endpoint defines the
request and the answer, the driver sends it. Both lists of methods are kept in step by
``tests/sdk/test_jobs.py::test_twins_have_the_same_methods``.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, overload

from .._logs.logger import LoggerOptions
from .._wire import endpoints as ep
from .._wire.models import (
    JobDetails,
    JobProgress,
    JobRef,
    JobState,
    LogEntry,
    LogPage,
    LogsAccepted,
    SpecInput,
)
from .claimed import AsyncClaimedJob, ClaimedJob
from .transport import AsyncDriver, SyncDriver

__all__ = ["AsyncJobs", "Jobs"]

LogInput = LogEntry | Mapping[str, Any]


class AsyncJobs:
    """The jobs API of ``AsyncEmitClient``: ``await client.jobs.create({...})``."""

    def __init__(self, driver: AsyncDriver) -> None:
        self._driver = driver
        self._space_id = driver.config.space_id

    # -- producer and read side ------------------------------------------------------

    @overload
    async def create(self, spec: SpecInput) -> JobRef: ...
    @overload
    async def create(self, spec: Sequence[SpecInput]) -> builtins.list[JobRef]: ...
    async def create(self, spec: SpecInput | Sequence[SpecInput]) -> Any:
        """Create one job (a ``JobSpec`` or mapping) or many (a list; refs in order).

        ref = await client.jobs.create({"name": "send-email", "payload": {"to": "..."}})
        """
        return await self._driver.send(ep.create(self._space_id, spec))

    async def get(self, job_id: str) -> JobDetails:
        """The job with its event history."""
        return await self._driver.send(ep.get(job_id))

    async def list(
        self, *, status: str | None = None, limit: int | None = None, offset: int | None = None
    ) -> builtins.list[JobDetails]:
        """The space's jobs, newest first (``limit`` up to 100)."""
        return await self._driver.send(ep.list_jobs(self._space_id, status, limit, offset))

    async def get_progress(self, job_id: str) -> JobProgress:
        """The job's latest progress."""
        return await self._driver.send(ep.get_progress(job_id))

    async def logs(
        self,
        job_id: str,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
        level: str | None = None,
        q: str | None = None,
    ) -> LogPage:
        """Read a page of the job's logs, oldest first; ``level`` is the minimum level."""
        call = ep.logs(job_id, after=after, before=before, limit=limit, level=level, q=q)
        return await self._driver.send(call)

    async def append_logs(
        self, job_id: str, entries: Iterable[LogInput], *, gzip: bool = True
    ) -> LogsAccepted:
        """Append log entries (``LogEntry`` or mappings) in one request, unbatched."""
        return await self._driver.send(ep.append_logs(job_id, ep.ndjson_body(entries), gzip=gzip))

    async def kill(self, job_id: str, reason: str | None = None) -> JobState:
        """Stop the job for good."""
        return await self._driver.send(ep.kill(job_id, reason))

    # -- worker side -----------------------------------------------------------------

    async def poll(
        self,
        count: int = 1,
        types: str | Sequence[str] | None = None,
        *,
        logger: LoggerOptions | None = None,
    ) -> builtins.list[AsyncClaimedJob]:
        """Claim up to ``count`` pending jobs (of ``types``); ``[]`` when none wait."""
        found = await self._driver.send(ep.poll(self._space_id, count, types))
        return [AsyncClaimedJob(self._driver, d, logger=logger) for d in found]

    async def claim(self, job_id: str, *, logger: LoggerOptions | None = None) -> AsyncClaimedJob:
        """Claim one pending job; ``ConflictError`` when it is not pending."""
        found = await self._driver.send(ep.claim(job_id))
        return AsyncClaimedJob(self._driver, found, logger=logger)

    async def ack(self, job_id: str) -> JobState:
        """Start running a claimed job."""
        return await self._driver.send(ep.ack(job_id))

    async def progress(
        self,
        job_id: str,
        percent: float,
        message: str,
        sub_progress: Mapping[str, Any] | None = None,
    ) -> JobState:
        """Report progress (0-100)."""
        return await self._driver.send(ep.progress(job_id, percent, message, sub_progress))

    async def checkpoint(self, job_id: str, data: Mapping[str, Any]) -> JobState:
        """Store checkpoint data."""
        return await self._driver.send(ep.checkpoint(job_id, data))

    async def event(self, job_id: str, data: Mapping[str, Any]) -> JobState:
        """Record a custom event."""
        return await self._driver.send(ep.event(job_id, data))

    async def keepalive(self, job_id: str) -> JobState:
        """Re-arm the job's timeout."""
        return await self._driver.send(ep.keepalive(job_id))

    async def complete(self, job_id: str, result: Any = None) -> JobState:
        """Finish the job with ``result``."""
        return await self._driver.send(ep.complete(job_id, result))

    async def fail(self, job_id: str, error: str | BaseException) -> JobState:
        """Fail this attempt; the job retries while it has retries."""
        return await self._driver.send(ep.fail(job_id, error))


class Jobs:
    """The jobs API of ``EmitClient``: ``client.jobs.create({...})``; see ``AsyncJobs``."""

    def __init__(self, driver: SyncDriver) -> None:
        self._driver = driver
        self._space_id = driver.config.space_id

    # -- producer and read side ------------------------------------------------------

    @overload
    def create(self, spec: SpecInput) -> JobRef: ...
    @overload
    def create(self, spec: Sequence[SpecInput]) -> builtins.list[JobRef]: ...
    def create(self, spec: SpecInput | Sequence[SpecInput]) -> Any:
        """Create one job (a ``JobSpec`` or mapping) or many (a list; refs in order).

        ref = client.jobs.create({"name": "send-email", "payload": {"to": "..."}})
        """
        return self._driver.send(ep.create(self._space_id, spec))

    def get(self, job_id: str) -> JobDetails:
        """The job with its event history."""
        return self._driver.send(ep.get(job_id))

    def list(
        self, *, status: str | None = None, limit: int | None = None, offset: int | None = None
    ) -> builtins.list[JobDetails]:
        """The space's jobs, newest first (``limit`` up to 100)."""
        return self._driver.send(ep.list_jobs(self._space_id, status, limit, offset))

    def get_progress(self, job_id: str) -> JobProgress:
        """The job's latest progress."""
        return self._driver.send(ep.get_progress(job_id))

    def logs(
        self,
        job_id: str,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
        level: str | None = None,
        q: str | None = None,
    ) -> LogPage:
        """Read a page of the job's logs, oldest first; ``level`` is the minimum level."""
        call = ep.logs(job_id, after=after, before=before, limit=limit, level=level, q=q)
        return self._driver.send(call)

    def append_logs(
        self, job_id: str, entries: Iterable[LogInput], *, gzip: bool = True
    ) -> LogsAccepted:
        """Append log entries (``LogEntry`` or mappings) in one request, unbatched."""
        return self._driver.send(ep.append_logs(job_id, ep.ndjson_body(entries), gzip=gzip))

    def kill(self, job_id: str, reason: str | None = None) -> JobState:
        """Stop the job for good."""
        return self._driver.send(ep.kill(job_id, reason))

    # -- worker side -----------------------------------------------------------------

    def poll(
        self,
        count: int = 1,
        types: str | Sequence[str] | None = None,
        *,
        logger: LoggerOptions | None = None,
    ) -> builtins.list[ClaimedJob]:
        """Claim up to ``count`` pending jobs (of ``types``); ``[]`` when none wait."""
        found = self._driver.send(ep.poll(self._space_id, count, types))
        return [ClaimedJob(self._driver, d, logger=logger) for d in found]

    def claim(self, job_id: str, *, logger: LoggerOptions | None = None) -> ClaimedJob:
        """Claim one pending job; ``ConflictError`` when it is not pending."""
        return ClaimedJob(self._driver, self._driver.send(ep.claim(job_id)), logger=logger)

    def ack(self, job_id: str) -> JobState:
        """Start running a claimed job."""
        return self._driver.send(ep.ack(job_id))

    def progress(
        self,
        job_id: str,
        percent: float,
        message: str,
        sub_progress: Mapping[str, Any] | None = None,
    ) -> JobState:
        """Report progress (0-100)."""
        return self._driver.send(ep.progress(job_id, percent, message, sub_progress))

    def checkpoint(self, job_id: str, data: Mapping[str, Any]) -> JobState:
        """Store checkpoint data."""
        return self._driver.send(ep.checkpoint(job_id, data))

    def event(self, job_id: str, data: Mapping[str, Any]) -> JobState:
        """Record a custom event."""
        return self._driver.send(ep.event(job_id, data))

    def keepalive(self, job_id: str) -> JobState:
        """Re-arm the job's timeout."""
        return self._driver.send(ep.keepalive(job_id))

    def complete(self, job_id: str, result: Any = None) -> JobState:
        """Finish the job with ``result``."""
        return self._driver.send(ep.complete(job_id, result))

    def fail(self, job_id: str, error: str | BaseException) -> JobState:
        """Fail this attempt; the job retries while it has retries."""
        return self._driver.send(ep.fail(job_id, error))
