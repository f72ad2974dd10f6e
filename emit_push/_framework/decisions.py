"""Every choice a run makes, as pure functions: no I/O, no event loop, no clock.

The runner (``runner``) and the executor (``execution``) gather facts (an API error, the
time now, how the function ended) and ask here what they mean; then they do it. So the
whole decision table can be read in one place and tested as tables
(``tests/framework/test_decisions.py``):

- :func:`run_limit`, :func:`idle_window`, :func:`run_deadline` and :func:`wait_budget`:
  when a run must be over (a fixed limit, and the service's execution timer, re-armed by
  the run's progress), and how long to wait for the function before stopping it;
- :func:`retry_until`: how long the run's calls are retried through transient failures;
- :func:`keepalive_every`: the keepalive period;
- :func:`after_ack`, :func:`after_run`, :func:`after_complete`, :func:`after_fail`:
  how the run ended → the next call to make (:class:`Complete`, :class:`Fail`) or the
  :class:`Outcome` to report;
- :func:`owns_delivery`: whether a never-acknowledged job is still this run's to fail.

What a push whose claim failed is answered (``push.claim_answer``) is decided before any
run, with the rest of the push protocol: such a push never loads this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .._exceptions import APIError, ConflictError, EmitError, JobKilledError, error_message

if TYPE_CHECKING:
    from .options import JobOptions, KeepaliveInterval

__all__ = [
    "WORKER_STOPPED",
    "Complete",
    "Fail",
    "Killed",
    "Outcome",
    "Overran",
    "Raised",
    "Returned",
    "Step",
    "after_ack",
    "after_complete",
    "after_fail",
    "after_run",
    "keepalive_every",
    "idle_window",
    "owns_delivery",
    "retry_until",
    "run_deadline",
    "run_limit",
    "wait_budget",
]

WORKER_STOPPED = "the worker stopped before the job finished"
DEADLINE_EXCEEDED = "deadline exceeded"

Status = Literal["completed", "failed", "killed", "skipped", "running", "delivered"]
"""How a run ended for this worker (the ``push.PushStatus`` values a run can come to):
``running`` and ``delivered`` are jobs the function left to settle later."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended, from this worker's side."""

    status: Status
    error: str | None = None
    reason: str | None = None
    exception: BaseException | None = None
    """The handler's exception, when ``stop_on_error`` asks for it to be re-raised."""


@dataclass(frozen=True, slots=True)
class Complete:
    """Next: complete the job with ``result``."""

    result: Any


@dataclass(frozen=True, slots=True)
class Fail:
    """Next: fail the job with ``error`` (``reason`` says why, in the answer)."""

    error: str | BaseException
    reason: str | None = None
    exception: BaseException | None = None


Step = Outcome | Complete | Fail


# -- how the function ended -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Returned:
    value: Any


@dataclass(frozen=True, slots=True)
class Raised:
    exception: Exception


@dataclass(frozen=True, slots=True)
class Killed:
    """A call answered ``job_killed``: the function was cancelled."""


@dataclass(frozen=True, slots=True)
class Overran:
    """Still running at the deadline (``worker_stopped`` False) or when the worker stopped."""

    worker_stopped: bool = False

    @property
    def why(self) -> str:
        """What the job is failed with."""
        return WORKER_STOPPED if self.worker_stopped else DEADLINE_EXCEEDED

    @property
    def reason(self) -> str:
        """The answer's word for it."""
        return "worker stopped" if self.worker_stopped else DEADLINE_EXCEEDED


Ending = Returned | Raised | Killed | Overran

KILLED = Outcome("killed", reason="killed while running")


# -- time -----------------------------------------------------------------------------


def run_limit(
    now: float,
    *,
    deadline: float | None,
    remaining_time: float | None,
    max_runtime: float | None,
) -> float | None:
    """The fixed part of a run's deadline (a ``time.monotonic()`` value), or None.

    The earliest of ``deadline`` (the platform's, as of the push's arrival), and
    ``remaining_time`` and ``max_runtime`` from ``now``. Nothing the run does moves it.
    """
    ends = [now + limit for limit in (remaining_time, max_runtime) if limit is not None]
    if deadline is not None:
        ends.append(deadline)
    return min(ends) if ends else None


def idle_window(keepalive_interval: KeepaliveInterval, timeout_seconds: float) -> float | None:
    """The service's execution timer, when the run must watch it itself: with keepalives
    off nothing re-arms it but the function's own progress, checkpoints and keepalives."""
    return timeout_seconds if keepalive_interval is None else None


def run_deadline(limit: float | None, armed_at: float, idle: float | None) -> float | None:
    """When a run must be over: ``limit``, or ``idle`` after the service's timer was last
    re-armed (``armed_at``: the claim, then each accepted progress, checkpoint or
    keepalive), whichever is earlier; None: no limit."""
    if idle is None:
        return limit
    timer = armed_at + idle
    return timer if limit is None else min(limit, timer)


def retry_until(now: float, deadline: float | None, timeout_seconds: float) -> float:
    """How long a run's calls are retried through transient failures: until the run's
    deadline, or without one for the job's timeout from the call's first try. That bounds
    the wait of a function blocked on a call: with nothing getting through, the service
    gives the delivery up by then; while keepalives still land it would hold the run
    longer, but a call failing that long fails the run (the job is retried) rather than
    hang it."""
    return deadline if deadline is not None else now + timeout_seconds


def wait_budget(deadline: float | None, now: float, margin: float) -> float | None:
    """How long to wait for the function before stopping it: ``margin`` before the
    deadline (never negative), or None: as long as it takes."""
    if deadline is None:
        return None
    return max(0.0, deadline - now - margin)


def keepalive_every(interval: KeepaliveInterval, timeout_seconds: float) -> float | None:
    """Seconds between keepalives, or None: none."""
    if interval == "auto":
        return max(timeout_seconds / 3, 0.05)
    return interval


def owns_delivery(
    *,
    acked: bool,
    since_claim: float,
    timeout_seconds: float,
    status: str | None = None,
    attempt_number: int | None = None,
    our_attempt: int | None = None,
) -> bool:
    """Whether a job this run never acknowledged is still delivered to it.

    Within the job's timeout of the claim its delivery cannot have timed out, so a job
    ``delivered`` at our attempt is ours, not another worker's next claim of it. Without
    ``status`` it answers whether reading the job back is worth it at all.
    """
    if acked or since_claim > timeout_seconds - 1.0:
        return False
    if status is None:
        return True
    return status == "delivered" and attempt_number == our_attempt


# -- the run's steps ------------------------------------------------------------------


def after_ack(error: EmitError | None) -> Outcome | None:
    """The automatic ack's answer: go on (None), or how the run ended before it began."""
    if error is None:
        return None
    if isinstance(error, JobKilledError):
        return Outcome("killed", reason="killed before it started")
    return Outcome("skipped", reason=f"could not acknowledge: {error}")


def after_run(
    ending: Ending, settled: str | None, options: JobOptions, acked: bool | None = None
) -> Step:
    """How the function ended → what to send, or the outcome as it stands.

    ``settled`` is how the function itself settled the job (it called ``complete``,
    ``fail`` or ``kill``), if it did: then nothing more is sent. ``acked``: whether this
    run acknowledged the job (None: as ``auto_ack`` says).
    """
    if isinstance(ending, Killed):
        return KILLED
    if isinstance(ending, Overran):
        return Fail(ending.why, ending.reason)
    if isinstance(ending, Raised):
        exc = ending.exception
        keep = exc if options["stop_on_error"] else None
        if settled is not None:
            return Outcome(settled, error=error_message(exc), exception=keep)  # type: ignore[arg-type]
        if not options["auto_fail_on_error"]:
            reason = "left running: auto_fail_on_error is off"
            return Outcome("failed", error=error_message(exc), reason=reason, exception=keep)
        return Fail(exc, exception=keep)
    if settled is not None:
        return Outcome(settled)  # type: ignore[arg-type]
    if not options["auto_complete"]:
        # The job is the function's to settle later: say how it was left, not "completed".
        if acked if acked is not None else options["auto_ack"]:
            return Outcome("running", reason="left to the handler (auto_complete is off)")
        reason = "left to the handler (auto_ack and auto_complete are off)"
        return Outcome("delivered", reason=reason)
    return Complete(ending.value)


def after_complete(error: Exception | None) -> Step:
    """The complete call's answer (or the result's encoding error) → the outcome."""
    if error is None:
        return Outcome("completed")
    if isinstance(error, JobKilledError):
        return KILLED
    if not isinstance(error, EmitError):  # the result could not be encoded as JSON
        return Fail(f"the result is not JSON: {error}", "invalid result")
    if isinstance(error, APIError) and not (error.retryable or isinstance(error, ConflictError)):
        # Refused for good (a result over the size limit, say): fail the job with why,
        # rather than leave it running into its timeout and the same refusal again.
        return Fail(f"the service refused the result: {error.message}", "invalid result")
    return Outcome("failed", error=f"could not complete: {error}", reason="complete failed")


def after_fail(step: Fail, error: EmitError | None) -> Outcome:
    """The fail call's answer → the outcome."""
    message = error_message(step.error)
    if error is None:
        return Outcome("failed", error=message, reason=step.reason, exception=step.exception)
    if isinstance(error, JobKilledError):
        return Outcome("killed", reason="killed while running", exception=step.exception)
    reason = f"could not fail the job: {error}"
    return Outcome("failed", error=message, reason=reason, exception=step.exception)
