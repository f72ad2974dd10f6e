"""Every push scenario through every real runtime (uvicorn, awslambdaric, functions-framework)
and for both handler kinds, against the local emit server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from tests.conftest import ADMIN_KEY, SPACE, LiveServer
from tests.harnesses.events import SHAPES
from tests.runtimes.conftest import AUTH, RUNTIMES, Runtime

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture(params=["async", "sync"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def admin(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.base_url, headers={"x-api-key": ADMIN_KEY}) as client:
        yield client


def create(admin: httpx.Client, name: str, payload: Any = None, **spec: Any) -> str:
    response = admin.post(f"/spaces/{SPACE}/jobs", json={"name": name, "payload": payload, **spec})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def pushed(job_id: str, name: str) -> dict[str, Any]:
    return {"type": "job.pending", "jobId": job_id, "spaceId": SPACE, "name": name}


def logs(admin: httpx.Client, job_id: str) -> list[str]:
    page = admin.get(f"/jobs/{job_id}/logs", params={"limit": 1000}).json()
    return [entry["message"] for entry in page["logs"]]


def test_a_push_runs_the_job_and_its_logs_are_stored_before_the_answer(
    runtime: Runtime, admin: httpx.Client, kind: str
) -> None:
    # On Lambda, each kind arrives in another event shape (the third is in test_lambda).
    shape = SHAPES[0] if kind == "async" else SHAPES[1]
    job_id = create(admin, f"ok-{kind}", {"n": 1})
    status, body = runtime.push(pushed(job_id, f"ok-{kind}"), shape=shape)
    assert (status, body["status"], body["jobId"]) == (200, "completed", job_id)
    assert logs(admin, job_id) == ["line 0", "line 1", "line 2"]  # before the answer
    job = admin.get(f"/jobs/{job_id}").json()
    assert job["status"] == "completed"
    assert job["result"] == {"payload": {"n": 1}, "kind": kind}
    assert job["progress"]["subProgress"] == {"step": {"percent": 50}}
    assert job["checkpoint"] == {"at": 50}
    assert "event" in [e["type"] for e in job["events"]]
    # The job's lines also reach the platform's log (emit_push.job, INFO) where the
    # runtime's logging has a handler (Lambda's): nothing need be configured there.
    if runtime.name == "lambda":
        output = runtime.output()
        for n in range(3):
            assert f"[ok-{kind} {job_id} #0] line {n}" in output, output


def test_duplicate_pushes_run_the_job_once(
    runtime: Runtime, admin: httpx.Client, kind: str
) -> None:
    job_id = create(admin, f"ok-{kind}")
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: runtime.push(pushed(job_id, f"ok-{kind}")), range(20)))
    statuses = sorted(body["status"] for _, body in answers)
    assert statuses == ["completed"] + ["skipped"] * 19
    job = admin.get(f"/jobs/{job_id}").json()
    assert [e["type"] for e in job["events"]].count("running") == 1
    assert logs(admin, job_id) == ["line 0", "line 1", "line 2"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer wrong"}, {"authorization": "push-secret-for-tests"}],
)
def test_a_bad_or_missing_secret_is_refused_before_any_api_call(
    runtime: Runtime, admin: httpx.Client, live: LiveServer, headers: dict[str, str]
) -> None:
    job_id = create(admin, "ok-async")
    before = len(live.api_calls(job_id))
    status, body = runtime.push(pushed(job_id, "ok-async"), headers)
    assert (status, body["code"]) == (401, "unauthorized")
    assert len(live.api_calls(job_id)) == before
    assert admin.get(f"/jobs/{job_id}").json()["status"] == "pending"


bodies = st.one_of(
    st.binary(max_size=200),
    st.dictionaries(
        st.sampled_from(["jobId", "type", "spaceId", "name", "x"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=140), st.lists(st.integers())),
    ).map(lambda d: json.dumps(d).encode()),
)


# On Lambda each example is an invocation (over 2 s in all); elsewhere, a tenth of a second.
@pytest.mark.parametrize(
    "runtime",
    [pytest.param(name, marks=[pytest.mark.slow] if name == "lambda" else []) for name in RUNTIMES],
    indirect=True,
)
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(body=bodies)
def test_malformed_bodies_never_give_a_5xx_nor_an_api_call(
    runtime: Runtime, live: LiveServer, body: bytes
) -> None:
    before = len(live.api_calls())
    status, answer = runtime.push(body)
    if status == 200:  # well-formed after all: a job id no one knows
        assert answer["status"] == "skipped"
        return
    assert 400 <= status < 500, (status, answer)
    assert set(answer) == {"error", "code"}
    assert len(live.api_calls()) == before


def test_an_exception_fails_the_job_and_the_retry_push_succeeds(
    runtime: Runtime, admin: httpx.Client, kind: str
) -> None:
    job_id = create(admin, f"flaky-{kind}", maxRetries=2)
    status, body = runtime.push(pushed(job_id, f"flaky-{kind}"))
    assert (status, body["status"], body["error"]) == (
        200,
        "failed",
        "RuntimeError: first attempt fails",
    )
    assert admin.get(f"/jobs/{job_id}").json()["status"] == "pending"
    status, body = runtime.push(pushed(job_id, f"flaky-{kind}"))
    assert (body["status"], body["attemptNumber"]) == ("completed", 1)
    assert admin.get(f"/jobs/{job_id}").json()["result"] == {"attempt": 1}
    first, traceback, *rest = logs(admin, job_id)
    assert (first, rest) == ("attempt 0", ["attempt 1"])
    # The job's own logs tell why the first attempt failed: its traceback, as an error line.
    assert traceback.startswith("Traceback (most recent call last)")
    assert traceback.endswith("RuntimeError: first attempt fails")
    # And the process's own log (stderr: CloudWatch, Cloud Logging), with nothing configured.
    output = runtime.output()
    if output is not None:
        told = f"job flaky-{kind} {job_id} (attempt 0) raised RuntimeError: first attempt fails"
        assert told in output, output
        assert "Traceback (most recent call last)" in output.partition(told)[2], output


def test_stdlib_records_land_in_their_own_jobs_logs(runtime: Runtime, admin: httpx.Client) -> None:
    """A library's ``logging`` record inside an ``async def`` (its task) and a ``def`` (its
    thread) run, pushed at once: each lands in its own job's logs, and in no other."""
    jobs = {kind: create(admin, f"stdlib-{kind}") for kind in ("async", "sync")}
    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(lambda kind: runtime.push(pushed(jobs[kind], f"stdlib-{kind}")), jobs)
        )
    assert [(status, body["status"]) for status, body in answers] == [(200, "completed")] * 2
    for kind, job_id in jobs.items():
        page = admin.get(f"/jobs/{job_id}/logs", params={"limit": 1000}).json()
        lines = [(e["level"], e["source"], e["message"]) for e in page["logs"]]
        where = "task" if kind == "async" else "thread"
        assert lines == [("warn", "scenario.library", f"from the {where} of {job_id}")]


def test_a_run_is_a_consumer_span_with_its_calls_as_client_children(
    runtime: Runtime, admin: httpx.Client
) -> None:
    """OpenTelemetry in the runtime's own process (the global provider, where it is not
    this test's process): the failed run and its calls, with their attributes."""
    job_id = create(admin, "flaky-async", maxRetries=0)
    runtime.push(pushed(job_id, "flaky-async"), {**AUTH, "traceparent": TRACEPARENT})
    spans = [s for s in runtime.spans() if job_id in json.dumps(s["attributes"])]
    [run] = [s for s in spans if s["name"] == "process flaky-async"]
    assert (run["kind"], run["status"], run["events"]) == ("CONSUMER", "ERROR", ["exception"])
    assert run["attributes"] == {
        "messaging.system": "emit.run",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.message.id": job_id,
        "messaging.destination.name": "flaky-async",
        "emit.job.attempt": 0,
        "emit.job.outcome": "failed",
        "error.type": "RuntimeError",
    }
    pushed_from = int(TRACEPARENT.split("-")[1], 16)  # the push's trace: linked, not a parent
    assert (run["links"], run["parent_id"]) == ([pushed_from], None)
    assert run["trace_id"] != pushed_from
    calls = [s for s in spans if s["parent_id"] == run["span_id"]]
    assert {s["trace_id"] for s in calls} == {run["trace_id"]}
    assert [(s["name"], s["kind"]) for s in calls] == [
        ("POST /jobs/{id}/claim", "CLIENT"),
        ("POST /jobs/{id}/ack", "CLIENT"),
        ("POST /jobs/{id}/logs", "CLIENT"),
        ("POST /jobs/{id}/fail", "CLIENT"),
    ]
    assert calls[-1]["attributes"]["url.full"] == f"{admin.base_url}jobs/{job_id}/fail"


def test_a_kill_mid_run_stops_the_function(
    runtime: Runtime, admin: httpx.Client, live: LiveServer, kind: str
) -> None:
    job_id = create(admin, f"long-{kind}")
    answers: list[tuple[int, Any]] = []
    with connect(f"{live.ws_url}/realtime/{job_id}?token={ADMIN_KEY}", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "init"
        pusher = threading.Thread(
            target=lambda: answers.append(runtime.push(pushed(job_id, f"long-{kind}")))
        )
        pusher.start()
        while json.loads(ws.recv(timeout=20))["type"] != "progress":
            pass  # the function is running now
        assert admin.post(f"/jobs/{job_id}/kill", json={"reason": "stop"}).is_success
        pusher.join(30)
    [(status, body)] = answers
    assert (status, body["status"]) == (200, "killed")
    events = [e["type"] for e in admin.get(f"/jobs/{job_id}").json()["events"]]
    assert events[events.index("killed") + 1 :] in ([], ["push_sent"])  # nothing after it
    assert logs(admin, job_id)[0] == "started"


@pytest.mark.slow
def test_the_deadline_fails_the_job_before_the_platform_does(
    runtime: Runtime, admin: httpx.Client, kind: str
) -> None:
    job_id = create(admin, f"slow-{kind}", maxRetries=1)
    started = time.monotonic()
    status, body = runtime.push(pushed(job_id, f"slow-{kind}"), deadline_in=3.0)
    elapsed = time.monotonic() - started
    assert (status, body["status"], body["reason"]) == (200, "failed", "deadline exceeded")
    assert elapsed < 3.0  # Lambda: 3 s left; elsewhere: max_runtime=3
    job = admin.get(f"/jobs/{job_id}").json()
    assert (job["status"], job["attemptNumber"]) == ("pending", 1)  # retried at once
    assert logs(admin, job_id) == ["started"]


def test_an_oversized_body_is_refused_without_an_api_call(
    runtime: Runtime, live: LiveServer
) -> None:
    before = len(live.api_calls())
    body = json.dumps({"jobId": "01JBIG", "pad": "x" * 200_000}).encode()
    status, answer = runtime.push(body)
    assert (status, answer["code"]) == (413, "payload_too_large")
    assert len(live.api_calls()) == before


def test_a_chunked_body_is_read_and_an_oversized_one_refused(
    runtime: Runtime, live: LiveServer, admin: httpx.Client
) -> None:
    if runtime.name == "lambda":
        pytest.skip("an event carries its whole body: nothing comes chunked")
    before = len(live.api_calls())
    big = json.dumps({"jobId": "01JBIG", "pad": "x" * 200_000}).encode()
    status, answer = runtime.push(big, chunked=True)  # no Content-Length to refuse it by
    assert (status, answer["code"]) == (413, "payload_too_large")
    assert len(live.api_calls()) == before
    job_id = create(admin, "ok-async", {"n": 1})
    status, answer = runtime.push(pushed(job_id, "ok-async"), chunked=True)
    assert (status, answer["status"]) == (200, "completed")
