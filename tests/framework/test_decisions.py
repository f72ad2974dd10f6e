"""The decision table of a run, as tables: no event loop, no server, no clock.

Each row is one fact a run can meet (how the function ended, a call's answer) and what
it must come to (a failed claim's answer is the push protocol's: ``test_push.py``). ``execution`` and ``runner`` only carry these out.
"""

from __future__ import annotations

import pydantic_core
import pytest

from emit_push import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    ConflictError,
    EmitError,
    JobKilledError,
    ServerError,
)
from emit_push._framework.decisions import (
    WORKER_STOPPED,
    Complete,
    Fail,
    Killed,
    Outcome,
    Overran,
    Raised,
    Returned,
    after_ack,
    after_complete,
    after_fail,
    after_run,
    idle_window,
    keepalive_every,
    owns_delivery,
    retry_until,
    run_deadline,
    run_limit,
    wait_budget,
)
from emit_push._framework.options import DEFAULTS, JobOptions, resolve


def options(**given: object) -> JobOptions:
    return resolve(DEFAULTS, given)


def api(kind: type[EmitError], status: int | None = None, code: str | None = None) -> EmitError:
    if kind in (APIConnectionError, APITimeoutError):
        return kind("no answer", method="POST", url="http://127.0.0.1/api/v1/jobs/job_1/claim")
    return kind("refused", status=status, code=code)  # type: ignore[call-arg]


# -- time -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "keepalive", "expected"),
    [
        ({}, "auto", None),  # nothing limits the run: keepalives re-arm the timer
        ({}, None, 100 + 30),  # no keepalives: the job's own timeout
        ({"remaining_time": 5}, "auto", 105),
        ({"max_runtime": 7}, "auto", 107),
        ({"deadline": 103}, "auto", 103),
        ({"deadline": 103, "remaining_time": 2, "max_runtime": 7}, 10, 102),
        ({"remaining_time": 60}, None, 130),  # the timeout is earlier than the platform's
        ({"deadline": 90}, None, 90),  # a deadline already passed stays passed
    ],
)
def test_the_run_deadline_is_the_earliest_limit(
    limits: dict[str, float], keepalive: object, expected: float | None
) -> None:
    given = {"deadline": None, "remaining_time": None, "max_runtime": None, **limits}
    limit = run_limit(100, **given)
    idle = idle_window(keepalive, 30)  # type: ignore[arg-type]
    assert run_deadline(limit, 100, idle) == expected


@pytest.mark.parametrize(
    ("limit", "armed_at", "idle", "expected"),
    [
        (None, 100, None, None),  # keepalives on: the service's timer is not watched
        (None, 100, 30, 130),
        (None, 125, 30, 155),  # re-armed by progress at 125
        (140, 125, 30, 140),  # re-arming never passes the fixed limit
        (200, 100, None, 200),
    ],
)
def test_progress_re_arms_the_deadline_up_to_the_fixed_limit(
    limit: float | None, armed_at: float, idle: float | None, expected: float | None
) -> None:
    assert run_deadline(limit, armed_at, idle) == expected


@pytest.mark.parametrize(
    ("now", "deadline", "timeout", "expected"),
    [(100, 130, 300, 130), (100, None, 300, 400), (100, 90, 300, 90)],
)
def test_calls_are_retried_until_the_deadline_or_for_the_jobs_timeout(
    now: float, deadline: float | None, timeout: float, expected: float
) -> None:
    assert retry_until(now, deadline, timeout) == expected


@pytest.mark.parametrize(
    ("deadline", "now", "margin", "expected"),
    [(None, 5, 1, None), (10, 5, 1, 4), (10, 9.5, 1, 0), (10, 20, 1, 0), (10, 5, 0, 5)],
)
def test_the_wait_stops_a_margin_before_the_deadline(
    deadline: float | None, now: float, margin: float, expected: float | None
) -> None:
    assert wait_budget(deadline, now, margin) == expected


@pytest.mark.parametrize(
    ("interval", "timeout", "expected"),
    [("auto", 30, 10), ("auto", 0.06, 0.05), (2.5, 30, 2.5), (None, 30, None)],
)
def test_keepalives(interval: object, timeout: float, expected: float | None) -> None:
    assert keepalive_every(interval, timeout) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({"acked": True}, False),  # we acked: a conflict is not about the delivery
        ({"since_claim": 29.5}, False),  # the delivery may have timed out already
        ({}, True),  # worth reading the job back
        ({"status": "delivered", "attempt_number": 2}, True),
        ({"status": "delivered", "attempt_number": 3}, False),  # another worker's claim
        ({"status": "pending", "attempt_number": 2}, False),
    ],
)
def test_a_never_acked_job_is_ours_only_while_delivered_to_us(
    facts: dict[str, object], expected: bool
) -> None:
    given = {"acked": False, "since_claim": 1.0, "timeout_seconds": 30, "our_attempt": 2, **facts}
    assert owns_delivery(**given) is expected  # type: ignore[arg-type]


# -- the run's steps ------------------------------------------------------------------


def test_the_ack() -> None:
    assert after_ack(None) is None
    assert after_ack(api(JobKilledError, 409, "job_killed")) == Outcome(
        "killed", reason="killed before it started"
    )
    skipped = after_ack(api(ServerError, 503))
    assert skipped is not None
    assert skipped.status == "skipped"
    assert str(skipped.reason).startswith("could not acknowledge")


BOOM = ValueError("boom")
UNAVAILABLE = api(ServerError, 503)
CONFLICT = api(ConflictError, 409, "invalid_state")
NO_ANSWER = api(APIConnectionError)


@pytest.mark.parametrize(
    ("ending", "settled", "given", "expected"),
    [
        (Returned({"ok": 1}), None, {}, Complete({"ok": 1})),
        (Returned(None), None, {}, Complete(None)),
        (  # acked, and left to the function to settle later: running, not completed
            Returned({"ok": 1}),
            None,
            {"auto_complete": False},
            Outcome("running", reason="left to the handler (auto_complete is off)"),
        ),
        (  # not even acked by the run: handed over, acked by the function if it did
            Returned(None),
            None,
            {"auto_complete": False, "auto_ack": False},
            Outcome("delivered", reason="left to the handler (auto_ack and auto_complete are off)"),
        ),
        (Returned({"ok": 1}), "completed", {"auto_complete": False}, Outcome("completed")),
        (Returned(None), "failed", {"auto_complete": False, "auto_ack": False}, Outcome("failed")),
        (Returned({"ok": 1}), "failed", {}, Outcome("failed")),  # it settled the job itself
        (Returned(None), "killed", {}, Outcome("killed")),
        (Raised(BOOM), None, {}, Fail(BOOM)),
        (Raised(BOOM), None, {"stop_on_error": True}, Fail(BOOM, exception=BOOM)),
        (
            Raised(BOOM),
            None,
            {"auto_fail_on_error": False},
            Outcome("failed", "ValueError: boom", "left running: auto_fail_on_error is off"),
        ),
        (Raised(BOOM), "completed", {}, Outcome("completed", error="ValueError: boom")),
        (Killed(), None, {}, Outcome("killed", reason="killed while running")),
        (Killed(), None, {"stop_on_error": True}, Outcome("killed", reason="killed while running")),
        (Overran(), None, {}, Fail("deadline exceeded", "deadline exceeded")),
        (Overran(), "completed", {}, Fail("deadline exceeded", "deadline exceeded")),
        (Overran(worker_stopped=True), None, {}, Fail(WORKER_STOPPED, "worker stopped")),
    ],
)
def test_how_the_function_ended_decides_the_next_step(
    ending: object, settled: str | None, given: dict[str, object], expected: object
) -> None:
    assert after_run(ending, settled, options(**given)) == expected  # type: ignore[arg-type]


def test_not_json_is_a_fail_with_the_reason() -> None:
    try:
        pydantic_core.to_jsonable_python(object())
    except pydantic_core.PydanticSerializationError as exc:
        error = exc
    step = after_complete(error)
    assert isinstance(step, Fail)
    assert str(step.error).startswith("the result is not JSON: ")
    assert step.reason == "invalid result"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (None, Outcome("completed")),
        (api(JobKilledError, 409, "job_killed"), Outcome("killed", reason="killed while running")),
        (
            api(BadRequestError, 413),
            Fail("the service refused the result: refused", "invalid result"),
        ),
        (UNAVAILABLE, Outcome("failed", f"could not complete: {UNAVAILABLE}", "complete failed")),
        (CONFLICT, Outcome("failed", f"could not complete: {CONFLICT}", "complete failed")),
        (NO_ANSWER, Outcome("failed", f"could not complete: {NO_ANSWER}", "complete failed")),
    ],
)
def test_the_complete_calls_answer(error: Exception | None, expected: object) -> None:
    assert after_complete(error) == expected


@pytest.mark.parametrize(
    ("step", "error", "expected"),
    [
        (Fail(BOOM), None, Outcome("failed", "ValueError: boom")),
        (
            Fail("deadline exceeded", "deadline exceeded"),
            None,
            Outcome("failed", "deadline exceeded", "deadline exceeded"),
        ),
        (
            Fail(BOOM, exception=BOOM),
            None,
            Outcome("failed", "ValueError: boom", exception=BOOM),
        ),
        (
            Fail(BOOM),
            api(JobKilledError, 409, "job_killed"),
            Outcome("killed", reason="killed while running"),
        ),
        (
            Fail(BOOM, "invalid payload"),
            UNAVAILABLE,
            Outcome("failed", "ValueError: boom", f"could not fail the job: {UNAVAILABLE}"),
        ),
    ],
)
def test_the_fail_calls_answer(step: Fail, error: EmitError | None, expected: Outcome) -> None:
    assert after_fail(step, error) == expected
