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

Names are imported on first use (PEP 562): ``import emit_push`` runs almost nothing, and
a Lambda serving pushes loads the API client, the wire models and httpx only when its
first push needs them. Type checkers and IDEs read the imports under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import importlib
import typing

from ._version import __version__

if typing.TYPE_CHECKING:  # what type checkers and IDEs read; at run time, __getattr__ below
    from ._client import AsyncEmitClient, EmitClient
    from ._exceptions import (
        APIConnectionError,
        APIError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        ConfigurationError,
        ConflictError,
        DeadlineExceeded,
        EmitError,
        InvalidInputError,
        JobKilledError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        RealtimeError,
        ServerError,
        UnexpectedResponseError,
    )
    from ._extras import MissingExtraError
    from ._framework.app import EmitPush, default_app, on_job
    from ._framework.execution import Middleware
    from ._framework.job import Job, SyncJob, current_job
    from ._framework.push import PushResult
    from ._framework.runner import ANY_NAME
    from ._framework.workers import PushHandler
    from ._logs.logger import JobLogger, LoggerOptions
    from ._realtime.events import (
        CompletedEvent,
        Connected,
        DeadEvent,
        InitEvent,
        KilledEvent,
        LogRange,
        LogsEvent,
        ProgressEvent,
        RealtimeClose,
        RealtimeEvent,
        RetriedEvent,
    )
    from ._realtime.options import Connect, RealtimeSocket
    from ._realtime.streams import AsyncRealtimeConnection, RealtimeConnection
    from ._sdk.claimed import AsyncClaimedJob, ClaimedJob
    from ._wire.models import (
        JobDescriptor,
        JobDetails,
        JobEvent,
        JobProgress,
        JobRef,
        JobSpec,
        JobState,
        JobStatus,
        LogEntry,
        LogPage,
        LogsAccepted,
        Progress,
        SubProgress,
    )

__all__ = [
    "ANY_NAME",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncClaimedJob",
    "AsyncEmitClient",
    "AsyncRealtimeConnection",
    "AuthenticationError",
    "BadRequestError",
    "ClaimedJob",
    "CompletedEvent",
    "ConfigurationError",
    "ConflictError",
    "Connect",
    "Connected",
    "DeadEvent",
    "DeadlineExceeded",
    "EmitClient",
    "EmitError",
    "EmitPush",
    "InitEvent",
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
    "JobStatus",
    "KilledEvent",
    "LogEntry",
    "LogPage",
    "LogRange",
    "LoggerOptions",
    "LogsAccepted",
    "LogsEvent",
    "Middleware",
    "MissingExtraError",
    "NotFoundError",
    "PermissionDeniedError",
    "Progress",
    "ProgressEvent",
    "PushHandler",
    "PushResult",
    "RateLimitError",
    "RealtimeClose",
    "RealtimeConnection",
    "RealtimeError",
    "RealtimeEvent",
    "RealtimeSocket",
    "RetriedEvent",
    "ServerError",
    "SubProgress",
    "SyncJob",
    "UnexpectedResponseError",
    "__version__",
    "current_job",
    "default_app",
    "on_job",
]

# The module of each public name, the same as the imports above (tests/test_exports.py
# checks that every name of __all__ resolves through it).
_MODULES = {
    "._framework.app": ("EmitPush", "default_app", "on_job"),
    "._client": ("AsyncEmitClient", "EmitClient"),
    "._exceptions": (
        "APIConnectionError", "APIError", "APITimeoutError", "AuthenticationError",
        "BadRequestError", "ConfigurationError", "ConflictError", "DeadlineExceeded",
        "EmitError", "InvalidInputError", "JobKilledError", "NotFoundError",
        "PermissionDeniedError", "RateLimitError", "RealtimeError", "ServerError",
        "UnexpectedResponseError",
    ),
    "._framework.job": ("Job", "SyncJob", "current_job"),
    "._extras": ("MissingExtraError",),
    "._sdk.claimed": ("AsyncClaimedJob", "ClaimedJob"),
    "._logs.logger": ("JobLogger", "LoggerOptions"),
    "._wire.models": (
        "JobDescriptor", "JobDetails", "JobEvent", "JobProgress", "JobRef", "JobSpec",
        "JobState", "JobStatus", "LogEntry", "LogPage", "LogsAccepted", "Progress", "SubProgress",
    ),
    "._framework.push": ("PushResult",),
    "._framework.runner": ("ANY_NAME",),
    "._framework.workers": ("PushHandler",),
    "._realtime.options": ("Connect", "RealtimeSocket"),
    "._framework.execution": ("Middleware",),
    "._realtime.streams": ("AsyncRealtimeConnection", "RealtimeConnection"),
    "._realtime.events": (
        "CompletedEvent", "Connected", "DeadEvent", "InitEvent", "KilledEvent", "LogRange",
        "LogsEvent", "ProgressEvent", "RealtimeClose", "RealtimeEvent", "RetriedEvent",
    ),
}  # fmt: skip
_SOURCE = {name: module for module, names in _MODULES.items() for name in names}


if not typing.TYPE_CHECKING:  # hidden from type checkers: `emit_push.Typo` stays an error

    def __getattr__(name: str) -> object:
        module = _SOURCE.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value  # from now on an ordinary global: no second lookup here
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
