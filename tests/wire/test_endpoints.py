"""Endpoints and the request flow, with no I/O: calls are values, the flow a generator."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest

from emit_push import (
    ConflictError,
    InvalidInputError,
    JobDescriptor,
    JobDetails,
    JobState,
    ServerError,
)
from emit_push._sdk.config import ClientConfig
from emit_push._sdk.transport import call_flow
from emit_push._wire import endpoints as ep
from emit_push._wire.retry import RetryPolicy

CONFIG = ClientConfig(
    space_id="s1",
    base_url="http://emit.test/api/v1",
    api_key="k",
    retry=RetryPolicy(max_retries=3, random=lambda: 0.0),
)


def _response(status: int, body: Any = None) -> httpx.Response:
    return httpx.Response(status, json=body)


def test_each_endpoint_describes_its_request() -> None:
    assert (ep.get("a/b").method, ep.get("a/b").path) == ("GET", "/jobs/a%2Fb")
    create = ep.create("s1", [{"name": "x", "max_retries": 1}])
    assert (create.path, create.retry) == ("/spaces/s1/jobs", "unprocessed")
    assert json.loads(create.content or b"") == [{"name": "x", "maxRetries": 1}]
    poll = ep.poll("s1", 3, "resize")
    assert (poll.path, poll.retry) == ("/spaces/s1/jobs/poll", "unprocessed")
    assert json.loads(poll.content or b"") == {"count": 3, "types": ["resize"]}
    assert ep.claim("j").retry == "unprocessed"
    assert [ep.ack("j").retry, ep.complete("j").retry, ep.fail("j", "e").retry] == ["confirm"] * 3
    assert ep.kill("j").retry == "confirm"
    assert [ep.progress("j", 1, "m").retry, ep.keepalive("j").retry] == ["idempotent"] * 2
    assert ep.checkpoint("j", {}).retry == "idempotent"
    assert [ep.event("j", {}).retry, ep.append_logs("j", b"").retry] == ["unprocessed"] * 2
    assert json.loads(ep.progress("j", 5, "m", {"a": {"percent": 1}}).content or b"") == {
        "percent": 5, "message": "m", "subProgress": {"a": {"percent": 1}},
    }  # fmt: skip
    assert ep.keepalive("j").content is None
    assert ep.logs("j", level="warn", limit=5).params == {"level": "warn", "limit": 5}
    assert ep.list_jobs("s1", None, 10, None).params == {"limit": 10}


def test_logs_are_sent_as_gzipped_ndjson() -> None:
    body = ep.ndjson_body([{"level": "info", "message": "a", "metadata": {"k": 1}}])
    call = ep.append_logs("j", body)
    assert call.headers == {"content-type": "application/x-ndjson", "content-encoding": "gzip"}
    assert (
        gzip.decompress(call.content or b"")
        == b'{"level":"info","message":"a","metadata":{"k":1}}\n'
    )
    with pytest.raises(InvalidInputError):
        ep.ndjson_body([{"message": "no level"}])


def test_arguments_that_cannot_be_sent_are_refused_before_any_request() -> None:
    with pytest.raises(InvalidInputError):
        ep.get("")
    with pytest.raises(InvalidInputError):
        ep.checkpoint("j", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        ep.complete("j", {"x": object()})
    assert ep.error_message(KeyError("k")) == "KeyError: 'k'"
    assert ep.error_message(RuntimeError()) == "RuntimeError"


def _drive(
    flow: Any,
    answers: list[Any],
    actions: list[Any] | None = None,
    on_action: Callable[[Any], object] = lambda action: None,
) -> tuple[Any, list[Any]]:
    """Run a flow by hand: each request gets the next answer; sleeps are recorded."""
    actions = [] if actions is None else actions
    outcome = None
    while True:
        try:
            action = flow.send(outcome)
        except StopIteration as stop:
            return stop.value, actions
        actions.append(action)
        on_action(action)
        outcome = None if isinstance(action, float) else answers.pop(0)


def test_the_flow_retries_then_parses() -> None:
    result, actions = _drive(
        call_flow(ep.claim("j1"), CONFIG),
        [_response(429), _response(200, {"job": {"id": "j1", "name": "n"}})],
    )
    assert isinstance(result, JobDescriptor)
    assert result.id == "j1"
    assert isinstance(actions[0], httpx.Request)
    assert str(actions[0].url) == "http://emit.test/api/v1/jobs/j1/claim"
    assert "x-api-key" not in actions[0].headers  # the drivers add the key, at send time
    assert actions[1] == 0.25
    assert actions[2] is actions[0]


def _kinds(actions: list[Any]) -> list[str]:
    return [a.method if isinstance(a, httpx.Request) else "sleep" for a in actions]


def test_the_flow_confirms_a_landed_complete_by_reading_the_job() -> None:
    job = {"id": "j1", "name": "n", "status": "completed", "attemptNumber": 0}
    expected = JobState(id="j1", status="completed", attempt_number=0)
    # The answer was lost: the job is read before the request is sent again.
    lost = [httpx.ReadError("lost"), _response(200, job)]
    result, actions = _drive(call_flow(ep.complete("j1", {"r": 1}, attempt_number=0), CONFIG), lost)
    assert (result, _kinds(actions)) == (expected, ["POST", "GET"])
    # A retry met 409: the job tells whether that is the first attempt's echo.
    conflict = _response(409, {"error": "it is completed", "code": "invalid_state"})
    echoed = [httpx.ConnectError("refused"), conflict, _response(200, job)]
    result, actions = _drive(
        call_flow(ep.complete("j1", {"r": 1}, attempt_number=0), CONFIG), echoed
    )
    assert (result, _kinds(actions)) == (expected, ["POST", "sleep", "POST", "GET"])


def test_the_flow_keeps_a_conflict_the_job_does_not_explain() -> None:
    job = {"id": "j1", "name": "n", "status": "completed", "attemptNumber": 1}  # another attempt
    with pytest.raises(ConflictError):
        _drive(
            call_flow(ep.complete("j1", attempt_number=0), CONFIG),
            [
                httpx.ConnectError("refused"),
                _response(409, {"code": "invalid_state"}),
                _response(200, job),
            ],
        )


def test_the_flow_sends_nothing_more_to_a_job_on_another_attempt() -> None:
    job = {"id": "j1", "name": "n", "status": "running", "attemptNumber": 1}
    actions: list[Any] = []
    with pytest.raises(ServerError):
        _drive(
            call_flow(ep.complete("j1", attempt_number=0), CONFIG),
            [_response(503), _response(200, job)],
            actions,
        )
    assert _kinds(actions) == ["POST", "GET"]


def test_a_fail_is_confirmed_by_its_event() -> None:
    events = [
        {"type": "retried", "data": {"error": "E: x", "attemptNumber": 3}, "attemptNumber": 3}
    ]
    job = {"id": "j1", "name": "n", "status": "running", "attemptNumber": 3, "events": events}
    details = JobDetails.model_validate(job)

    def landed(error: str, attempt: int) -> bool:
        confirm = ep.fail("j1", error, attempt).confirm
        assert confirm is not None
        return confirm.check(details) is not None

    assert landed("E: x", 2)
    assert not landed("other", 2)  # another failure
    assert not landed("E: x", 0)  # another attempt


def _drive_until(
    call: Any, until: float, answers: list[httpx.Response], policy: RetryPolicy
) -> tuple[Any, list[float]]:
    """Run a flow with ``until`` on a fake clock that the flow's sleeps advance; returns
    its result (or the error it raised) and the times of its requests."""
    now = 0.0
    sent: list[float] = []

    def step(action: Any) -> None:
        nonlocal now
        if isinstance(action, float):
            now += action
        else:
            sent.append(now)

    flow = call_flow(call, replace(CONFIG, retry=policy), until=until, clock=lambda: now)
    try:
        result, _ = _drive(flow, answers, on_action=step)
    except ServerError as error:
        return error, sent
    return result, sent


def test_retries_until_a_time_go_on_until_that_time() -> None:
    """A run's calls are retried until its deadline (``until``): a backoff that would pass
    it is cut short, so the last attempt is made at ``until``, not a backoff before it."""
    policy = RetryPolicy(max_retries=0, initial_delay=1.0, max_delay=1.0, random=lambda: 1.0)
    ok = _response(200, {"id": "j1", "status": "running"})
    answers = [_response(503), _response(503), _response(503), ok]
    result, sent = _drive_until(ep.keepalive("j1"), 2.5, answers, policy)
    assert not isinstance(result, ServerError)
    assert sent == [0.0, 1.0, 2.0, 2.5]  # was [0.0, 1.0, 2.0]: given up at 2.0 of 2.5
    error, sent = _drive_until(ep.keepalive("j1"), 2.5, [_response(503)] * 4, policy)
    assert isinstance(error, ServerError)
    assert sent == [0.0, 1.0, 2.0, 2.5]  # nothing after ``until``
    # A Retry-After that does not fit ends the retries: the service asked for that wait.
    told = httpx.Response(503, json={}, headers={"retry-after": "1"})
    error, sent = _drive_until(
        ep.keepalive("j1"), 2.5, [_response(503), _response(503), told], policy
    )
    assert isinstance(error, ServerError)
    assert sent == [0.0, 1.0, 2.0]


def test_the_flow_raises_the_last_error_when_retries_run_out() -> None:
    with pytest.raises(ServerError) as caught:
        _drive(call_flow(ep.get("j1"), CONFIG), [_response(500)] * 4)
    assert caught.value.status == 500
