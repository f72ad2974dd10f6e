"""emit-push: run emit.run background jobs on serverless platforms and web apps.

The SDK layer:

    from emit_push import AsyncEmitClient

    async with AsyncEmitClient() as client:          # EMIT_SPACE_ID, EMIT_API_KEY
        await client.jobs.create({"name": "resize", "payload": {"url": "..."}})
        for job in await client.jobs.poll(types="resize"):
            async with job:
                await job.ack()
                job.log.info("resizing")
                await job.complete({"ok": True})
"""

from __future__ import annotations

from ._app import EmitPush, default_app, on_job
from ._client import AsyncEmitClient, EmitClient
from ._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    EmitError,
    InvalidInputError,
    JobKilledError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
)
from ._handler_job import DeadlineExceeded, Job, SyncJob
from ._job import AsyncClaimedJob, ClaimedJob
from ._logger import JobLogger, LoggerOptions
from ._models import (
    JobDescriptor,
    JobDetails,
    JobEvent,
    JobProgress,
    JobRef,
    JobSpec,
    JobState,
    LogEntry,
    LogPage,
    LogsAccepted,
    Progress,
    SubProgress,
)
from ._push import PushResult
from ._version import __version__

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncClaimedJob",
    "AsyncEmitClient",
    "AuthenticationError",
    "BadRequestError",
    "ClaimedJob",
    "ConfigurationError",
    "ConflictError",
    "DeadlineExceeded",
    "EmitClient",
    "EmitError",
    "EmitPush",
    "InvalidInputError",
    "Job",
    "JobDescriptor",
    "JobDetails",
    "JobEvent",
    "JobKilledError",
    "JobLogger",
    "JobProgress",
    "JobRef",
    "JobSpec",
    "JobState",
    "LogEntry",
    "LogPage",
    "LoggerOptions",
    "LogsAccepted",
    "NotFoundError",
    "PermissionDeniedError",
    "Progress",
    "PushResult",
    "RateLimitError",
    "ServerError",
    "SubProgress",
    "SyncJob",
    "UnexpectedResponseError",
    "__version__",
    "default_app",
    "on_job",
]
