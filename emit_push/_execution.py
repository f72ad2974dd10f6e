"""Running one claimed job: ack, payload, keepalives, deadline, kill, result, logs.

The same steps serve a push and the polling worker. In order: acknowledge the job
(``auto_ack``); validate its payload into the handler's type (a mismatch fails the job
with the validation message); start keepalives; run the function, through the app's
middleware, as a task (``def`` functions in a worker thread); then

- its return value completes the job (``auto_complete``), serialised if it is a model;
- an exception fails the job with ``Type: message`` (``auto_fail_on_error``);
- a kill (409 ``job_killed`` on any call, keepalives included) cancels the function and
  nothing more is sent;
- the deadline, ``deadline_margin`` seconds early, cancels the function and fails the job
  as ``deadline exceeded``, so it is retried at once rather than at the service's timeout.

Whatever happens, the job's buffered logs are sent before :func:`execute` returns:
serverless platforms freeze the process as soon as the answer is out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import anyio.to_thread
import pydantic_core
from pydantic import ValidationError

from . import _endpoints as ep
from ._endpoints import error_message
from ._exceptions import EmitError, JobKilledError
from ._handler_job import DeadlineExceeded, Job, SyncJob
from ._handlers import Handler
from ._job import AsyncClaimedJob

__all__ = ["Middleware", "Outcome", "execute"]

log = logging.getLogger("emit_push")

Middleware = Callable[[Job[Any], Callable[[], Awaitable[Any]]], Awaitable[Any]]
"""``async def middleware(job, call_next)``: wraps every run; ``await call_next()`` runs
the handler (and the middleware after this one) and returns its result."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended, from this worker's side."""

    status: Literal["completed", "failed", "killed", "skipped"]
    error: str | None = None
    reason: str | None = None
    exception: BaseException | None = None
    """The handler's exception, when ``stop_on_error`` asks for it to be re-raised."""


async def execute(
    handler: Handler,
    job: Job[Any],
    middleware: Sequence[Middleware] = (),
    abort: asyncio.Event | None = None,
) -> Outcome:
    """Run ``job`` with ``handler``; never raises but for the caller's own cancellation.

    Setting ``abort`` (a stopping worker) stops the function and fails the job back, as
    the deadline does, so that it is retried at once elsewhere.
    """
    keepalive: asyncio.Task[None] | None = None
    try:
        if handler.options.auto_ack:
            try:
                await job.ack()
            except JobKilledError:
                return Outcome("killed", reason="killed before it started")
            except EmitError as exc:
                return Outcome("skipped", reason=f"could not acknowledge: {exc}")
        if handler.payload is not None:
            try:
                job.payload = handler.payload.validate_python(job.descriptor.payload)
            except ValidationError as exc:
                return await _fail(job, _payload_error(exc), reason="invalid payload")
        every = handler.options.keepalive_every(job.timeout_seconds)
        if every is not None:
            keepalive = asyncio.create_task(_keep_alive(job, every), name=f"keepalive-{job.id}")
        return await _run(handler, job, middleware, abort)
    finally:
        if keepalive is not None:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
        await job.aclose()  # the logs go out before the answer, on every path


async def _run(
    handler: Handler, job: Job[Any], middleware: Sequence[Middleware], abort: asyncio.Event | None
) -> Outcome:
    state = job._state
    options = handler.options
    view: Job[Any] | SyncJob[Any] = (
        job if handler.is_async else SyncJob(job, asyncio.get_running_loop())
    )

    async def call_handler() -> Any:
        if handler.is_async:
            return await handler.func(view)
        call = functools.partial(handler.func, view)
        return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)

    chain: Callable[[], Awaitable[Any]] = call_handler
    for layer in reversed(middleware):
        chain = functools.partial(layer, job, chain)
    task: asyncio.Task[Any] = asyncio.ensure_future(chain())
    state.on_killed = task.cancel
    timeout = None if state.deadline is None else state.deadline - time.monotonic()
    if timeout is not None:
        timeout = max(0.0, timeout - options.deadline_margin)
    aborted = asyncio.ensure_future(abort.wait()) if abort is not None else None
    try:
        waiting = {task} if aborted is None else {task, aborted}
        await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if aborted is not None:
            aborted.cancel()
    if not task.done():
        stopped = abort is not None and abort.is_set()
        why = "the worker stopped before the job finished" if stopped else "deadline exceeded"
        state.stopped = DeadlineExceeded(f"{why}; the job was failed")
        task.cancel()
        await asyncio.wait({task}, timeout=options.deadline_margin / 2 or None)
        return await _fail(job, why, reason="worker stopped" if stopped else "deadline exceeded")
    try:
        result = task.result()
    except asyncio.CancelledError:
        if isinstance(state.stopped, JobKilledError):
            return Outcome("killed", reason="killed while running")
        raise
    except JobKilledError:
        return Outcome("killed", reason="killed while running")
    except Exception as exc:
        return await _handler_failed(handler, job, view, exc)
    if state.settled is not None:  # the function completed, failed or killed it itself
        return Outcome(state.settled)  # type: ignore[arg-type]
    if not options.auto_complete:
        return Outcome("completed", reason="left to the handler (auto_complete is off)")
    try:
        await job.complete(pydantic_core.to_jsonable_python(result))
    except JobKilledError:
        return Outcome("killed", reason="killed while running")
    except pydantic_core.PydanticSerializationError as exc:
        return await _fail(job, f"the result is not JSON: {exc}", reason="invalid result")
    except EmitError as exc:
        return Outcome("failed", error=f"could not complete: {exc}", reason="complete failed")
    return Outcome("completed")


async def _handler_failed(
    handler: Handler, job: Job[Any], view: Job[Any] | SyncJob[Any], exc: Exception
) -> Outcome:
    options = handler.options
    if options.on_error is not None:
        try:
            called = options.on_error(exc, view)
            if inspect.isawaitable(called):
                await called
        except Exception:
            log.exception("on_error of %r raised", handler.name)
    keep = exc if options.stop_on_error else None
    if job._state.settled is not None:
        return Outcome(job._state.settled, error=error_message(exc), exception=keep)  # type: ignore[arg-type]
    if not options.auto_fail_on_error:
        reason = "left running: auto_fail_on_error is off"
        return Outcome("failed", error=error_message(exc), reason=reason, exception=keep)
    outcome = await _fail(job, exc)
    return Outcome(outcome.status, outcome.error, outcome.reason, keep)


async def _fail(job: Job[Any], error: str | BaseException, reason: str | None = None) -> Outcome:
    """Fail the job; past the deadline too (the stop that blocks the function's calls)."""
    message = error_message(error)
    try:
        await job._flushed()
        await AsyncClaimedJob._run(job, ep.fail(job.id, error, job.attempt_number))
    except JobKilledError:
        return Outcome("killed", reason="killed while running")
    except EmitError as exc:
        return Outcome("failed", error=message, reason=f"could not fail the job: {exc}")
    return Outcome("failed", error=message, reason=reason)


async def _keep_alive(job: Job[Any], every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await job.keepalive()
        except (JobKilledError, DeadlineExceeded):
            return  # a kill already cancelled the function
        except EmitError as exc:
            log.warning("keepalive of job %s failed: %s", job.id, exc)


def _payload_error(exc: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(part) for part in error['loc']) or 'payload'}: {error['msg']}"
        for error in exc.errors()[:5]
    ]
    return f"invalid payload ({exc.title}): " + "; ".join(problems)
