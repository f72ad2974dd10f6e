"""``run_handler``: one handler, one payload, a recording job, and no server.

The run takes the production path from the claim on (``Runner.run_claimed``: ack,
payload validation, keepalives, deadline, middleware, complete or fail, log flush); only
the API is replaced, by a one-job stand-in (``_service``) that answers every call as
emit.run would and records it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, overload

import httpx
import pydantic_core

from .._client import AsyncEmitClient
from .._framework.app import EmitPush
from .._framework.execution import Middleware
from .._framework.job import Job
from .._framework.push import PushResult, PushStatus
from .._wire.models import JobDescriptor, LogEntry
from ._bound import check_options, with_client, with_options
from ._service import API_PREFIX, KillAfter, ProgressReport, RecordedCall, Service

__all__ = ["Recording", "run_handler", "run_handler_sync"]

_SPACE_ID = "01JRECORDINGSPACE000000000"


@dataclass(frozen=True, slots=True)
class Recording:
    """What one run of a handler did, as the service saw it.

    ``status`` is how the run ended for the worker (``completed``, ``failed``, ``killed``);
    ``job_status`` is the job's status after it (``completed``, ``pending`` when a retry is
    due, ``dead`` when none is left, ``killed``, or ``running`` when the handler left it
    so). The lists hold what the handler sent, in order.
    """

    job_id: str
    """The id of the job that ran (``run_handler``'s ``job_id``, ``"test-job"`` unless set)."""
    status: PushStatus | None
    job_status: str
    result: Any
    """The result the job was completed with (as JSON), else None."""
    error: str | None
    """The error the job was failed with (``Type: message``), else None."""
    reason: str | None
    """Why the run ended as it did when it says more (``deadline exceeded``...)."""
    exception: Exception | None
    """The exception the handler raised, if it did."""
    progress: list[ProgressReport]
    checkpoints: list[Any]
    events: list[Any]
    logs: list[LogEntry]
    """The ``job.log`` entries the service received, decoded from the batches."""
    calls: list[RecordedCall]
    """Every API call of the run, log batches and reads included."""
    push_result: PushResult
    """What a push endpoint would have answered for this run."""
    killed_by_test: bool
    """Whether ``kill_after`` killed the job (rather than the handler, or not at all)."""

    @property
    def actions(self) -> list[str]:
        """The job calls answered or refused, in order: ``["ack", "progress", "complete"]``.

        Log batches and reads are left out: when they happen depends on timing.
        """
        return [c.action for c in self.calls if c.method == "POST" and c.action != "logs"]

    @property
    def will_retry(self) -> bool:
        """Whether the job was failed with a retry left (it is ``pending`` again)."""
        return self.job_status == "pending"


@overload
async def run_handler(
    app: EmitPush,
    name: str,
    payload: Any = None,
    /,
    *,
    job_id: str = ...,
    attempt_number: int = ...,
    max_retries: int = ...,
    timeout_seconds: int = ...,
    remaining_time: float | None = ...,
    kill_after: KillAfter | None = ...,
    checkpoint: Mapping[str, Any] | None = ...,
    **options: Any,
) -> Recording: ...
@overload
async def run_handler(
    func: Callable[..., Any],
    payload: Any = None,
    /,
    *,
    name: str | None = ...,
    job_id: str = ...,
    attempt_number: int = ...,
    max_retries: int = ...,
    timeout_seconds: int = ...,
    remaining_time: float | None = ...,
    kill_after: KillAfter | None = ...,
    checkpoint: Mapping[str, Any] | None = ...,
    **options: Any,
) -> Recording: ...
async def run_handler(
    target: EmitPush | Callable[..., Any],
    /,
    *args: Any,
    name: str | None = None,
    job_id: str = "test-job",
    attempt_number: int = 0,
    max_retries: int = 3,
    timeout_seconds: int = 300,
    remaining_time: float | None = None,
    kill_after: KillAfter | None = None,
    checkpoint: Mapping[str, Any] | None = None,
    **options: Any,
) -> Recording:
    """Run one handler on ``payload`` with a recording job, as a push would run it.

    ``run_handler(app, "name", payload)`` runs the app's handler for ``name`` with the
    app's options and middleware; ``run_handler(func, payload)`` runs a function (``def``
    or ``async def``, decorated or not) with the default options. Keyword ``options`` are
    ``on_job`` options (``auto_complete``, ``keepalive_interval``, ``deadline_margin``...)
    that override the handler's.

    The job is attempt ``attempt_number`` of ``max_retries``, with ``timeout_seconds`` as
    its timeout. ``remaining_time`` is the platform's time left, in seconds, as on Lambda:
    the deadline. ``kill_after=n`` kills the job once ``n`` job calls (ack, progress,
    keepalive...) were answered, so the next answers 409 ``job_killed``; a function
    ``kill_after=lambda call: ...`` kills it after the first call it returns True for.
    With ``stop_on_error`` the handler's exception propagates, as from ``handle_push``.
    ``checkpoint`` is what an earlier attempt stored (give ``attempt_number`` >= 1 too):
    ``job.last_checkpoint()`` reads it, through ``GET /jobs/<id>`` as on the service.

        recording = await run_handler(app, "resize", {"url": "s3://a", "width": 64})
        assert recording.status == "completed"
        assert recording.result == {"thumbnail": "s3://a?w=64"}
    """
    check_options(options)
    if checkpoint is not None and attempt_number < 1:
        raise ValueError(
            "checkpoint= is what an earlier attempt stored: give attempt_number=1 or more"
        )
    name, payload = _name_and_payload(target, args, name)
    descriptor = JobDescriptor(
        id=job_id,
        name=name,
        payload=_as_json(payload),
        timeout_seconds=timeout_seconds,
        max_retries=max_retries,
        attempt_number=attempt_number,
        created_at=datetime.now(UTC),
        space_id=_SPACE_ID,
    )
    earlier = None if checkpoint is None else _as_json(dict(checkpoint))
    service = Service(descriptor, kill_after, checkpoint=earlier)
    raised: list[Exception] = []
    client = AsyncEmitClient(
        space_id=_SPACE_ID,
        api_key="emit_recording",
        base_url=f"http://emit.test{API_PREFIX}",
        transport=httpx.MockTransport(service.handle),
        max_retries=0,
    )
    async with client:
        app = _app_for(target, name, client, functools.partial(_capture, raised), options)
        answer = await app.runner.run_claimed(descriptor, remaining_time=remaining_time)
    return Recording(
        job_id=job_id,
        status=answer.status,
        job_status=service.status,
        result=service.result if service.status == "completed" else None,
        error=answer.error,
        reason=answer.reason,
        exception=raised[0] if raised else None,
        progress=service.progress,
        checkpoints=service.checkpoints,
        events=service.events,
        logs=service.logs,
        calls=service.calls,
        push_result=answer,
        killed_by_test=service.killed_by_test,
    )


@overload
def run_handler_sync(
    app: EmitPush,
    name: str,
    payload: Any = None,
    /,
    *,
    job_id: str = ...,
    attempt_number: int = ...,
    max_retries: int = ...,
    timeout_seconds: int = ...,
    remaining_time: float | None = ...,
    kill_after: KillAfter | None = ...,
    checkpoint: Mapping[str, Any] | None = ...,
    **options: Any,
) -> Recording: ...
@overload
def run_handler_sync(
    func: Callable[..., Any],
    payload: Any = None,
    /,
    *,
    name: str | None = ...,
    job_id: str = ...,
    attempt_number: int = ...,
    max_retries: int = ...,
    timeout_seconds: int = ...,
    remaining_time: float | None = ...,
    kill_after: KillAfter | None = ...,
    checkpoint: Mapping[str, Any] | None = ...,
    **options: Any,
) -> Recording: ...
def run_handler_sync(
    target: EmitPush | Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Recording:
    """``run_handler`` for sync code (a plain ``def`` test): the same arguments, the same
    ``Recording``, on an event loop of its own.

        def test_resize() -> None:
            recording = run_handler_sync(app, "resize", {"url": "s3://a", "width": 64})
            assert recording.status == "completed"

    In async code, ``await run_handler(...)`` instead: this one refuses to run inside a
    running event loop (it would block it).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run_handler(target, *args, **kwargs))
    raise RuntimeError("run_handler_sync() cannot run in an event loop: await run_handler(...)")


def _name_and_payload(
    target: EmitPush | Callable[..., Any], args: tuple[Any, ...], name: str | None
) -> tuple[str, Any]:
    if isinstance(target, EmitPush):
        if not 1 <= len(args) <= 2 or name is not None:
            raise TypeError("use run_handler(app, name, payload)")
        if target.runner.handler_for(args[0]) is None:
            raise LookupError(f"{target!r} has no handler for {args[0]!r}")
        return args[0], args[1] if len(args) > 1 else None
    if not callable(target):
        raise TypeError(f"run_handler takes an EmitPush app or a function, not {target!r}")
    if len(args) > 1:
        raise TypeError("use run_handler(func, payload)")
    return name or getattr(target, "__name__", None) or "job", args[0] if args else None


def _app_for(
    target: EmitPush | Callable[..., Any],
    name: str,
    client: AsyncEmitClient,
    capture: Middleware,
    options: Mapping[str, Any],
) -> EmitPush:
    """The app to run with: a copy of the user's, or one made for a bare function."""
    if isinstance(target, EmitPush):
        app = with_client(target, client, middleware=[capture])
        handler = app.runner.handler_for(name)
        if options and handler is not None:
            with_options(app, handler, options)
        return app
    app = EmitPush(client=client, push_secret=None)
    app.on_job(name, **options)(target)
    app.middleware(capture)
    return app


async def _capture(
    raised: list[Exception], job: Job[Any], call_next: Callable[[], Awaitable[Any]]
) -> Any:
    """The innermost middleware: keeps what the handler raised."""
    try:
        return await call_next()
    except Exception as exc:
        raised.append(exc)
        raise


def _as_json(payload: Any) -> Any:
    """The payload as the handler gets it: through JSON, as it travels on the wire."""
    try:
        return pydantic_core.from_json(pydantic_core.to_json(payload))
    except pydantic_core.PydanticSerializationError as exc:
        raise TypeError(f"the payload must be JSON-serialisable: {exc}") from exc
