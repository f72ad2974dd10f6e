"""Running one claimed job: ack, payload, keepalives, the function, then what it came to.

The same steps serve a push and the polling worker. In order: acknowledge the job
(``auto_ack``); validate its payload into the handler's type (a mismatch fails the job
with the validation message); start keepalives; run the function, through the app's
middleware, as a task (``def`` functions in a thread of their own); wait for it until
``deadline_margin`` before the deadline, a kill, or a stopping worker. How it ended is
handed to ``decisions`` (complete, fail, or report), and the calls it asks for are made
here: this module is the thin, effectful interpreter of that table.

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
from typing import TYPE_CHECKING, Any, TypeVar

from .._exceptions import (
    ConflictError,
    DeadlineExceeded,
    EmitError,
    JobKilledError,
    error_message,
)
from .decisions import (
    Complete,
    Ending,
    Fail,
    Killed,
    Outcome,
    Overran,
    Raised,
    Returned,
    Step,
    after_ack,
    after_complete,
    after_fail,
    after_run,
    keepalive_every,
    owns_delivery,
    wait_budget,
)
from .handlers import Handler, is_async_function
from .job import Job, RunState, SyncJob

if TYPE_CHECKING:
    from pydantic import ValidationError

    from .._sdk.claimed import AsyncRunner

__all__ = ["Middleware", "end", "execute", "in_thread"]

T = TypeVar("T")

log = logging.getLogger("emit_push")
run_log = logging.getLogger("emit_push.run")

Middleware = Callable[[Job[Any], Callable[[], Awaitable[Any]]], Awaitable[Any]]
"""``async def middleware(job, call_next)``: wraps every run; ``await call_next()`` runs
the handler (and the middleware after this one) and returns its result."""


async def execute(
    handler: Handler,
    job: Job[Any],
    state: RunState,
    client: AsyncRunner,
    middleware: Sequence[Middleware] = (),
    abort: asyncio.Event | None = None,
) -> Outcome:
    """Run ``job`` with ``handler``; never raises but for the caller's own cancellation.

    ``state`` is the run's (deadline, how it settled); ``client`` sends this worker's own
    calls (the fail after a deadline passes, when the function's calls are refused).
    Setting ``abort`` (a stopping worker) stops the function and fails the job back, as
    the deadline does, so that it is retried at once elsewhere.
    """
    options = handler.options
    keepalive: asyncio.Task[None] | None = None
    try:
        if options["auto_ack"]:
            refused = after_ack(await _error_of(job.ack()))
            if refused is not None:
                return refused
        if handler.payload is not None:
            from pydantic import ValidationError

            try:
                job.payload = handler.payload.validate_python(job.descriptor.payload)
            except ValidationError as exc:
                why = _payload_error(exc)
                _report_payload(job, why)
                return await _settle(Fail(why, "invalid payload"), job, state, client)
        every = keepalive_every(options["keepalive_interval"], job.timeout_seconds)
        if every is not None:
            keepalive = asyncio.create_task(_keep_alive(job, every), name=f"keepalive-{job.id}")
        ending = await _run(handler, job, state, client, middleware, abort)
        step = after_run(ending, state.settled, options, state.acked)
        return await _settle(step, job, state, client)
    finally:
        if keepalive is not None:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
        await job.aclose()  # the logs go out before the answer, on every path
        end(state, job.id)


def end(state: RunState, job_id: str) -> None:
    """The run is answered: whatever its function does from now on is not sent (a late
    ``def`` function, one that swallowed its cancellation), log lines included."""
    state.over = True
    if state.stopped is None:
        state.stopped = DeadlineExceeded(f"the run of job {job_id} is over; nothing more is sent")


async def _run(
    handler: Handler,
    job: Job[Any],
    state: RunState,
    client: AsyncRunner,
    middleware: Sequence[Middleware],
    abort: asyncio.Event | None,
) -> Ending:
    """Run the function as a task until it ends, is killed, overruns or is aborted."""
    if abort is not None and abort.is_set():  # the worker stopped while the job was acked
        return Overran(worker_stopped=True)
    margin = handler.options["deadline_margin"]
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
    # The function's task (and its thread) know their job: ``current_job()``, and the
    # ``logging`` records they make go to the job's logs (``_logs.bridge``).
    from .._logs.bridge import Capture, current, install_capture
    from .._logs.logger import LoggerOptions

    level = (handler.options["logger"] or LoggerOptions()).capture_level
    if level is not None:
        install_capture()
    token = current.set(Capture(view, job.log, level))
    try:
        task: asyncio.Task[Any] = asyncio.ensure_future(chain())
    finally:
        current.reset(token)
    state.on_killed = task.cancel
    aborted = asyncio.ensure_future(abort.wait()) if abort is not None else None
    try:
        waiting = {task} if aborted is None else {task, aborted}
        while True:
            timeout = wait_budget(state.deadline, time.monotonic(), margin)
            done, _ = await asyncio.wait(
                waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            # Out of time, unless the function's progress re-armed the deadline meanwhile.
            if done or not wait_budget(state.deadline, time.monotonic(), margin):
                break
    except asyncio.CancelledError:
        # Our caller is being cancelled (a server shutting down, a stopped loop): stop the
        # function and fail the job back, so that it is not left running until it times out.
        stopped = Overran(worker_stopped=True)
        await asyncio.shield(_stop_and_settle(stopped, task, margin, handler, job, state, client))
        raise
    finally:
        if aborted is not None:
            aborted.cancel()
    if not task.done():
        if isinstance(state.stopped, JobKilledError):  # killed, and slow to stop: send nothing
            task.cancel()
            return Killed()
        overran = Overran(worker_stopped=abort is not None and abort.is_set())
        await _stop(overran, task, margin, state)
        return overran
    try:
        value = task.result()
    except asyncio.CancelledError:
        if isinstance(state.stopped, JobKilledError):
            return Killed()
        raise
    except JobKilledError:
        return Killed()
    except Exception as exc:
        _report(job, exc)
        await _on_error(handler, job, view, exc)
        return Raised(exc)
    return Returned(value)


def _report(job: Job[Any], exc: Exception) -> None:
    """A function raised: its traceback to the process's log, and to the job's own logs
    (an ``error`` line, sent before the fail); the fail says ``Type: message``."""
    from .._logs.bridge import bounded_traceback
    from .._logs.logger import OWN_SOURCE

    extra = {
        "emit_job_id": job.id,
        "emit_job_name": job.name,
        "emit_job_attempt": job.attempt_number,
    }
    run_log.error(
        "job %s %s (attempt %d) raised %s",
        job.name, job.id, job.attempt_number, error_message(exc), exc_info=exc, extra=extra,
    )  # fmt: skip
    job.log.error(bounded_traceback(exc), source=OWN_SOURCE)


def _report_payload(job: Job[Any], why: str) -> None:
    """A payload the handler's model refused: to the process's log and the job's own, as
    a raising function is (the function never ran)."""
    from .._logs.logger import OWN_SOURCE

    extra = {
        "emit_job_id": job.id,
        "emit_job_name": job.name,
        "emit_job_attempt": job.attempt_number,
    }
    run_log.warning(
        "job %s %s (attempt %d) not run: %s", job.name, job.id, job.attempt_number, why,
        extra=extra,
    )  # fmt: skip
    job.log.error(why, source=OWN_SOURCE)


async def _stop(overran: Overran, task: asyncio.Task[Any], margin: float, state: RunState) -> None:
    """Stop the function: its next job call raises, and its task is cancelled."""
    state.stopped = DeadlineExceeded(f"{overran.why}; the job was failed")
    task.cancel()
    await asyncio.wait({task}, timeout=max(margin / 2, 0.1))  # let it wind down, briefly


async def _stop_and_settle(
    overran: Overran,
    task: asyncio.Task[Any],
    margin: float,
    handler: Handler,
    job: Job[Any],
    state: RunState,
    client: AsyncRunner,
) -> Outcome:
    await _stop(overran, task, margin, state)
    return await _settle(after_run(overran, state.settled, handler.options), job, state, client)


async def _settle(step: Step, job: Job[Any], state: RunState, client: AsyncRunner) -> Outcome:
    """Make the calls ``step`` asks for until the decisions give an outcome."""
    while not isinstance(step, Outcome):
        if isinstance(step, Complete):
            step = after_complete(await _complete(job, step.result))
        else:
            step = after_fail(step, await _fail(step, job, state, client))
    return step


async def _complete(job: Job[Any], result: Any) -> Exception | None:
    import pydantic_core

    from .._wire.calls import jsonable

    try:
        await job.complete(jsonable(result))
    except (EmitError, pydantic_core.PydanticSerializationError) as exc:
        return exc
    return None


async def _fail(
    step: Fail, job: Job[Any], state: RunState, client: AsyncRunner
) -> EmitError | None:
    """Fail the job; past the deadline too (when the function's own calls are refused)."""
    from .._wire import endpoints as ep

    fail = ep.fail(job.id, step.error, job.attempt_number)
    try:
        await job.flush()
        try:
            await client.send(fail)
        except ConflictError as exc:
            if isinstance(exc, JobKilledError) or not await _owns_delivery(job, state, client):
                raise
            # Never acknowledged (auto_ack off, the function stopped before its own ack).
            # Only a running job can be failed, and a delivered one must not wait for its
            # delivery timeout: acknowledge it, then fail it.
            await client.send(ep.ack(job.id, job.attempt_number))
            await client.send(fail)
    except EmitError as exc:
        return exc
    return None


async def _owns_delivery(job: Job[Any], state: RunState, client: AsyncRunner) -> bool:
    from .._wire import endpoints as ep

    def owned(status: str | None = None, attempt_number: int | None = None) -> bool:
        return owns_delivery(
            acked=state.acked,
            since_claim=time.monotonic() - state.claimed_at,
            timeout_seconds=job.timeout_seconds,
            status=status,
            attempt_number=attempt_number,
            our_attempt=job.attempt_number,
        )

    if not owned():  # not worth a read
        return False
    details = await client.send(ep.get(job.id))
    return owned(details.status, details.attempt_number)


async def _error_of(call: Awaitable[Any]) -> EmitError | None:
    try:
        await call
    except EmitError as exc:
        return exc
    return None


async def _on_error(
    handler: Handler, job: Job[Any], view: Job[Any] | SyncJob[Any], exc: Exception
) -> None:
    on_error = handler.options["on_error"]
    if on_error is None:
        return
    try:
        if is_async_function(on_error):  # on the loop: it gets the async job
            await typing.cast(Awaitable[None], on_error(exc, job))
        else:  # in a thread: a SyncJob's calls must not block the loop they run on
            await in_thread(on_error, exc, view)
    except Exception:
        log.exception("on_error of %r raised", handler.name)


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
