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
import contextvars
import functools
import logging
import threading
import time
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import pydantic_core
from pydantic import ValidationError

from . import _endpoints as ep
from ._endpoints import error_message
from ._exceptions import APIError, ConflictError, EmitError, JobKilledError
from ._handler_job import DeadlineExceeded, Job, SyncJob
from ._handlers import Handler, is_async_function
from ._job import AsyncClaimedJob

__all__ = ["WORKER_STOPPED", "Middleware", "Outcome", "execute", "in_thread"]

T = TypeVar("T")
WORKER_STOPPED = "the worker stopped before the job finished"

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
        return await in_thread(handler.func, view)

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
    except asyncio.CancelledError:
        # Our caller is being cancelled (a server shutting down, a stopped loop): stop the
        # function and fail the job back, so that it is not left running until it times out.
        await asyncio.shield(_stop(job, task, options.deadline_margin, WORKER_STOPPED))
        raise
    finally:
        if aborted is not None:
            aborted.cancel()
    if not task.done():
        if isinstance(state.stopped, JobKilledError):  # killed, and slow to stop: send nothing
            task.cancel()
            return Outcome("killed", reason="killed while running")
        stopped = abort is not None and abort.is_set()
        why = WORKER_STOPPED if stopped else "deadline exceeded"
        return await _stop(job, task, options.deadline_margin, why)
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
    except APIError as exc:
        if exc.retryable or isinstance(exc, ConflictError):
            return Outcome("failed", error=f"could not complete: {exc}", reason="complete failed")
        # Refused for good (a result over the size limit, say): fail the job with why,
        # rather than leave it running into its timeout and the same refusal again.
        return await _fail(job, f"the service refused the result: {exc.message}", "invalid result")
    except EmitError as exc:
        return Outcome("failed", error=f"could not complete: {exc}", reason="complete failed")
    return Outcome("completed")


async def _handler_failed(
    handler: Handler, job: Job[Any], view: Job[Any] | SyncJob[Any], exc: Exception
) -> Outcome:
    options = handler.options
    on_error = options.on_error
    if on_error is not None:
        try:
            if is_async_function(on_error):  # on the loop: it gets the async job
                await typing.cast(Awaitable[None], on_error(exc, job))
            else:  # in a thread: a SyncJob's calls must not block the loop they run on
                await in_thread(on_error, exc, view)
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


async def _stop(job: Job[Any], task: asyncio.Task[Any], margin: float, why: str) -> Outcome:
    """Stop the function (the deadline, or a stopping worker) and fail the job back."""
    job._state.stopped = DeadlineExceeded(f"{why}; the job was failed")
    task.cancel()
    await asyncio.wait({task}, timeout=max(margin / 2, 0.1))  # let it wind down, briefly
    reason = "worker stopped" if why == WORKER_STOPPED else "deadline exceeded"
    return await _fail(job, why, reason=reason)


def in_thread(func: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Run a ``def`` function in a daemon thread of its own; await its result.

    Not anyio's worker threads: those are joined at interpreter exit, so an abandoned
    function (past its deadline, on a stopped worker) would keep the process alive. A
    daemon thread is left to finish, or to die with the process.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(outcome: Callable[[Any], None], value: Any) -> None:
        if not future.done():
            outcome(value)

    def run() -> None:
        try:
            result = context.run(func, *args)
        except BaseException as exc:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                loop.call_soon_threadsafe(settle, future.set_exception, exc)
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, future.set_result, result)

    threading.Thread(
        target=run, name=f"emit-{getattr(func, '__name__', 'job')}", daemon=True
    ).start()
    return future


async def _fail(job: Job[Any], error: str | BaseException, reason: str | None = None) -> Outcome:
    """Fail the job; past the deadline too (the stop that blocks the function's calls)."""
    message = error_message(error)
    fail = ep.fail(job.id, error, job.attempt_number)
    try:
        await job._flushed()
        try:
            await AsyncClaimedJob._run(job, fail)
        except ConflictError as exc:
            if isinstance(exc, JobKilledError) or not await _delivered_to_us(job):
                raise
            # Never acknowledged (auto_ack off, the function stopped before its own ack).
            # Only a running job can be failed, and a delivered one must not wait for its
            # delivery timeout: acknowledge it, then fail it.
            await AsyncClaimedJob._run(job, ep.ack(job.id, job.attempt_number))
            await AsyncClaimedJob._run(job, fail)
    except JobKilledError:
        return Outcome("killed", reason="killed while running")
    except EmitError as exc:
        return Outcome("failed", error=message, reason=f"could not fail the job: {exc}")
    return Outcome("failed", error=message, reason=reason)


async def _delivered_to_us(job: Job[Any]) -> bool:
    """Whether the job is still delivered to this run, which never acknowledged it.

    Within the job's timeout of the claim, its delivery cannot have timed out, so a job
    ``delivered`` at our attempt is ours, not another worker's next claim of it.
    """
    state = job._state
    if state.acked or time.monotonic() - state.claimed_at > job.timeout_seconds - 1.0:
        return False
    details = await AsyncClaimedJob._run(job, ep.get(job.id))
    return details.status == "delivered" and details.attempt_number == job.attempt_number


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
