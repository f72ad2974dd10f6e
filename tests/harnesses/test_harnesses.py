"""Proof that the adapter harnesses work, with stand-in handlers in place of the framework:
the real awslambdaric against the Runtime API stub, and the real functions-framework."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import time
from typing import Any

import httpx
import pytest

from emit_push.server import API_PREFIX, EmitServer
from tests.conftest import ADMIN_KEY, SPACE, client_for
from tests.harnesses.conftest import STANDINS
from tests.harnesses.events import (
    SHAPES,
    Shape,
    build_event,
    event_body,
    event_headers,
    load_event,
)
from tests.harnesses.faults import WORKER_CALLS, Dropped, FaultyServer, Injection, Kind, serve
from tests.harnesses.gcf import FunctionsFramework
from tests.harnesses.lambda_runtime import (
    FunctionError,
    FunctionProcess,
    LambdaInitError,
    LambdaRuntime,
)
from tests.harnesses.runtime_api import API

PUSH = {
    "type": "job.pending",
    "jobId": "01JTESTJOB0000000000000001",
    "spaceId": "01JTESTSPACE00000000000000",
    "name": "transcode",
    "attemptNumber": 1,
    "timestamp": "2025-02-03T13:45:21.123Z",
}
SECRET = "Bearer test-push-secret-0123456789"
ENV = {"STANDIN_ECHO_ENV": "from-start-function"}


def start_echo(rt: LambdaRuntime) -> FunctionProcess:
    return rt.start_function("lambda_echo.handler", task_root=STANDINS, env=ENV)


def echoed(response: Any) -> dict[str, Any]:
    """The stand-in's echo, after checking the API Gateway-style envelope around it."""
    assert isinstance(response, dict), response
    assert response["statusCode"] == 200
    assert response["headers"] == {"content-type": "application/json"}
    assert response["isBase64Encoded"] is False
    echo: dict[str, Any] = json.loads(response["body"])
    return echo


# -- recorded events and their builders -------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_recorded_events_are_posts_of_a_push_with_authorization(shape: Shape) -> None:
    event = load_event(shape)
    push = json.loads(event_body(event))
    assert push["type"] == "job.pending"
    assert set(push) == {"type", "jobId", "spaceId", "name", "attemptNumber", "timestamp"}
    headers = event_headers(event)
    assert headers["authorization"].startswith("Bearer ")
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "emit.run/1.0"
    if shape == "apigw_rest_api_v1":
        assert event["httpMethod"] == "POST"
        assert event["multiValueHeaders"] == {k: [v] for k, v in event["headers"].items()}
    else:
        assert event["version"] == "2.0"
        assert event["requestContext"]["http"]["method"] == "POST"
        assert all(name == name.lower() for name in event["headers"])
        assert headers["content-length"] == str(len(event_body(event)))


@pytest.mark.parametrize("shape", SHAPES)
def test_builders_replace_body_and_merge_headers(shape: Shape) -> None:
    event = build_event(shape, {"jobId": "j1"}, {"Authorization": "Bearer other", "X-Extra": "1"})
    assert event_body(event) == b'{"jobId":"j1"}'
    assert event["isBase64Encoded"] is False
    headers = event_headers(event)
    assert headers["authorization"] == "Bearer other"
    assert headers["x-extra"] == "1"
    assert headers["user-agent"] == "emit.run/1.0"  # recorded headers are kept
    assert list(headers).count("authorization") == 1
    if shape == "apigw_rest_api_v1":
        assert event["headers"]["Authorization"] == "Bearer other"  # the client's spelling
        assert event["multiValueHeaders"]["X-Extra"] == ["1"]
        assert "content-length" not in headers
    else:
        assert event["headers"]["content-length"] == "14"
    assert event["requestContext"]["requestId"] != load_event(shape)["requestContext"]["requestId"]

    dropped = build_event(shape, headers={"authorization": None})
    assert "authorization" not in event_headers(dropped)
    assert event_body(dropped) == event_body(load_event(shape))


@pytest.mark.parametrize("shape", SHAPES)
def test_builders_base64_encode_on_request_and_for_binary(shape: Shape) -> None:
    forced = build_event(shape, {"jobId": "j1"}, base64_body=True)
    assert forced["isBase64Encoded"] is True
    assert base64.b64decode(forced["body"]) == b'{"jobId":"j1"}'
    binary = build_event(shape, b"\xff\x00\xfe")
    assert binary["isBase64Encoded"] is True
    assert event_body(binary) == b"\xff\x00\xfe"


# -- awslambdaric against the Runtime API stub ------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_awslambdaric_runs_the_handler_for_each_event_shape(
    lambda_runtime: LambdaRuntime, shape: Shape
) -> None:
    fn = start_echo(lambda_runtime)
    echo = echoed(lambda_runtime.invoke(build_event(shape, PUSH, {"authorization": SECRET})))
    invocation = lambda_runtime.invocations[-1]
    assert invocation.status == "succeeded"
    assert invocation.process is fn
    assert echo["body"] == PUSH
    assert echo["headers"]["authorization"] == SECRET
    assert echo["method"] == "POST"
    assert echo["request_id"] == invocation.request_id
    assert echo["function_arn"] == lambda_runtime.function_arn
    assert echo["function_name"] == lambda_runtime.function_name
    assert echo["memory_limit_in_mb"] == "512"
    assert echo["trace_id"] == invocation.headers["Lambda-Runtime-Trace-Id"]
    assert echo["env"] == ENV["STANDIN_ECHO_ENV"]
    assert echo["pid"] == fn.pid != os.getpid()


@pytest.mark.parametrize(
    ("shape", "path"),
    [("lambda_function_url", "/"), ("apigw_http_api_v2", "/emit"), ("apigw_rest_api_v1", "/emit")],
)
def test_mangum_reads_each_event_shape(
    lambda_runtime: LambdaRuntime, shape: Shape, path: str
) -> None:
    lambda_runtime.start_function("lambda_mangum.handler", task_root=STANDINS)
    response = lambda_runtime.invoke(build_event(shape, PUSH, {"authorization": SECRET}))
    assert response["statusCode"] == 200
    echo = json.loads(response["body"])
    assert echo["method"] == "POST"
    assert echo["path"] == path
    assert echo["headers"]["authorization"] == SECRET
    assert echo["headers"]["content-type"] == "application/json"
    assert json.loads(echo["body"]) == PUSH


def test_warm_invocations_share_one_process_and_connection(lambda_runtime: LambdaRuntime) -> None:
    fn = start_echo(lambda_runtime)
    first = echoed(lambda_runtime.invoke(build_event("lambda_function_url")))
    second = echoed(lambda_runtime.invoke(build_event("lambda_function_url")))
    assert (
        (first["pid"], first["boot_id"])
        == (second["pid"], second["boot_id"])
        == (fn.pid, first["boot_id"])
    )
    assert (first["invocations"], second["invocations"]) == (1, 2)
    assert fn.invocations == 2
    assert lambda_runtime.processes == [fn]
    one, two = lambda_runtime.invocations
    assert one.process is two.process is fn
    # The runtime client kept its HTTP/1.1 connection to the stub across invocations.
    assert one.connection == two.connection is not None


def test_a_stopped_function_cold_starts_on_the_next_invoke(lambda_runtime: LambdaRuntime) -> None:
    fn = start_echo(lambda_runtime)
    warm = echoed(lambda_runtime.invoke(build_event("lambda_function_url")))
    lambda_runtime.stop_function()
    assert fn.returncode is not None
    cold = echoed(lambda_runtime.invoke(build_event("lambda_function_url")))
    assert cold["pid"] != warm["pid"]
    assert cold["boot_id"] != warm["boot_id"]
    assert cold["invocations"] == 1
    assert len(lambda_runtime.processes) == 2
    assert lambda_runtime.function is lambda_runtime.processes[1]
    assert lambda_runtime.function.invocations == 1


@pytest.mark.parametrize("deadline_in", [3.0, 30.0])
def test_the_deadline_reaches_get_remaining_time_in_millis(
    lambda_runtime: LambdaRuntime, deadline_in: float
) -> None:
    start_echo(lambda_runtime)
    echo = echoed(lambda_runtime.invoke(build_event("apigw_http_api_v2"), deadline_in=deadline_in))
    budget_ms = deadline_in * 1000
    assert budget_ms - 1000 < echo["remaining_ms"] <= budget_ms
    invocation = lambda_runtime.invocations[-1]
    sent = int(invocation.headers["Lambda-Runtime-Deadline-Ms"])
    assert sent == invocation.deadline_ms
    assert abs(sent - (time.time() * 1000 + budget_ms)) < 2000


def test_optional_runtime_headers_reach_the_context(lambda_runtime: LambdaRuntime) -> None:
    start_echo(lambda_runtime)
    plain = echoed(lambda_runtime.invoke(build_event("lambda_function_url")))
    assert (plain["client_context"], plain["cognito_identity_id"]) == (None, None)
    echo = echoed(
        lambda_runtime.invoke(
            build_event("lambda_function_url"),
            trace_id="Root=1-67a0c8b1-000000000000000000000001;Sampled=1",
            client_context={"custom": {"tenant": "t1"}},
            cognito_identity={"cognitoIdentityId": "us-east-1:abc", "cognitoIdentityPoolId": "p"},
        )
    )
    assert echo["trace_id"] == "Root=1-67a0c8b1-000000000000000000000001;Sampled=1"
    assert echo["client_context"] == {"tenant": "t1"}
    assert echo["cognito_identity_id"] == "us-east-1:abc"


def test_a_raised_exception_comes_back_through_error(lambda_runtime: LambdaRuntime) -> None:
    fn = start_echo(lambda_runtime)
    error = lambda_runtime.invoke(
        build_event("apigw_rest_api_v1", headers={"X-Standin-Raise": "boom"})
    )
    invocation = lambda_runtime.invocations[-1]
    assert isinstance(error, FunctionError)
    assert invocation.status == "failed"
    assert invocation.error is error
    assert (error.error_type, error.error_message) == ("ValueError", "boom")
    assert error.body["requestId"] == invocation.request_id
    assert any(
        "lambda_echo.py" in frame and "raise ValueError" in frame for frame in error.stack_trace
    )
    assert "ValueError" in error.headers["lambda-runtime-function-xray-error-cause"]
    # A handler exception does not end the process: the next invocation is warm.
    assert echoed(lambda_runtime.invoke(build_event("apigw_rest_api_v1")))["pid"] == fn.pid
    assert fn.invocations == 2


def test_past_the_deadline_the_process_is_killed(lambda_runtime: LambdaRuntime) -> None:
    fn = start_echo(lambda_runtime)
    started = time.monotonic()
    event = build_event("lambda_function_url", headers={"x-standin-sleep": "30"})
    error = lambda_runtime.invoke(event, deadline_in=1.0)
    assert 1.0 <= time.monotonic() - started < 5.0
    assert isinstance(error, FunctionError)
    assert error.error_type == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in error.error_message
    assert lambda_runtime.invocations[-1].status == "timed_out"
    assert fn.returncode is not None
    assert lambda_runtime.function is None
    # Lambda resets the environment after a timeout: the next invocation is a cold start.
    assert echoed(lambda_runtime.invoke(build_event("lambda_function_url")))["pid"] != fn.pid


@pytest.mark.parametrize(
    ("handler", "error_type"),
    [
        ("lambda_echo.no_such_function", "Runtime.HandlerNotFound"),
        ("no_such_module.handler", "Runtime.ImportModuleError"),
    ],
)
def test_an_init_failure_comes_back_through_init_error(
    lambda_runtime: LambdaRuntime, handler: str, error_type: str
) -> None:
    with pytest.raises(LambdaInitError) as raised:
        lambda_runtime.start_function(handler, task_root=STANDINS)
    assert raised.value.error.error_type == error_type
    assert lambda_runtime.function is None
    assert lambda_runtime.processes[0].returncode is not None
    assert lambda_runtime.invocations == []


def test_the_stub_keeps_connections_alive_and_refuses_unknown_ids(
    lambda_runtime: LambdaRuntime,
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", lambda_runtime.port, timeout=5)
    try:
        statuses = []
        for _ in range(2):  # one connection, two requests
            connection.request("POST", f"{API}/invocation/nope/response", body=b"{}")
            response = connection.getresponse()
            statuses.append((response.status, json.loads(response.read())["errorType"]))
        connection.request("GET", "/2018-06-01/runtime/unknown")
        response = connection.getresponse()
        statuses.append((response.status, json.loads(response.read())["errorType"]))
    finally:
        connection.close()
    assert statuses == [(400, "InvalidRequestID")] * 2 + [(404, "NotFound")]


# -- functions-framework -----------------------------------------------------------------


def test_functions_framework_serves_the_standin_on_loopback() -> None:
    with FunctionsFramework(STANDINS / "gcf_echo.py", "echo", env=ENV) as ff:
        assert ff.url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=ff.url, trust_env=False, timeout=10) as client:
            echoes = [
                client.post("/", json=PUSH, headers={"authorization": SECRET}) for _ in range(2)
            ]
        assert [response.status_code for response in echoes] == [200, 200]
        first, second = (response.json() for response in echoes)
        assert first == {
            "method": "POST",
            "path": "/",
            "body": PUSH,
            "authorization": SECRET,
            "env": ENV["STANDIN_ECHO_ENV"],
            "pid": first["pid"],
            "requests": 1,
        }
        assert second == {**first, "requests": 2}  # the same warm worker
        assert first["pid"] != os.getpid()
    assert ff.returncode is not None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", ff.port), timeout=1).close()


def test_functions_framework_fails_fast_on_a_bad_target() -> None:
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="no_such_target"):
        FunctionsFramework(STANDINS / "gcf_echo.py", "no_such_target")
    assert time.monotonic() - started < 15


# -- the fault-injection layer (faults.py) ------------------------------------------------


async def pending_job(emit: EmitServer) -> str:
    async with client_for(emit, ADMIN_KEY) as admin:
        response = await admin.post(f"/spaces/{SPACE}/jobs", json={"name": "x"})
    return str(response.json()["id"])


async def status_of(emit: EmitServer, job_id: str) -> str:
    async with client_for(emit, ADMIN_KEY) as admin:
        return str((await admin.get(f"/jobs/{job_id}")).json()["status"])


def through(faults: FaultyServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=faults),
        base_url=f"http://emit.test{API_PREFIX}",
        headers={"x-api-key": ADMIN_KEY},
    )


async def test_before_answers_503_and_the_server_never_acts(emit: EmitServer) -> None:
    job_id = await pending_job(emit)
    faults = FaultyServer(emit.app, kind="before", only=WORKER_CALLS)
    async with through(faults) as client:
        claim = await client.post(f"/jobs/{job_id}/claim")
        read = await client.get(f"/jobs/{job_id}")  # not a worker call: passes
    assert claim.status_code == 503
    assert claim.json() == {
        "error": "injected fault: service unavailable",
        "code": "service_unavailable",
    }
    assert read.status_code == 200
    assert await status_of(emit, job_id) == "pending"
    assert faults.injected == {"before": 1}
    assert faults.log == [Injection("before", "POST", f"{API_PREFIX}/jobs/{job_id}/claim")]


async def test_after_lets_the_server_act_and_loses_its_answer(emit: EmitServer) -> None:
    job_id = await pending_job(emit)
    faults = FaultyServer(emit.app, kind="after", only=WORKER_CALLS)
    async with through(faults) as client:
        claim = await client.post(f"/jobs/{job_id}/claim")
    assert claim.status_code == 503
    assert await status_of(emit, job_id) == "delivered"  # the claim landed
    assert faults.log == [
        Injection("after", "POST", f"{API_PREFIX}/jobs/{job_id}/claim", lost_status=200)
    ]


@pytest.mark.parametrize(
    ("kind", "status"), [("before-drop", "pending"), ("after-drop", "delivered")]
)
async def test_a_drop_in_process_raises_a_closed_connection(
    emit: EmitServer, kind: Kind, status: str
) -> None:
    job_id = await pending_job(emit)
    faults = FaultyServer(emit.app, kind=kind)
    async with through(faults) as client:
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await client.post(f"/jobs/{job_id}/claim")
    assert isinstance(caught.value, Dropped)
    assert await status_of(emit, job_id) == status
    assert faults.injected == {kind: 1}


@pytest.mark.parametrize(
    ("kind", "status"), [("before-drop", "pending"), ("after-drop", "delivered")]
)
async def test_a_drop_on_uvicorn_closes_the_connection_without_an_answer(
    emit: EmitServer, kind: Kind, status: str
) -> None:
    job_id = await pending_job(emit)
    faults = FaultyServer(emit.app, kind=kind, only=WORKER_CALLS)
    headers = {"x-api-key": ADMIN_KEY}
    async with (
        serve(faults) as url,
        httpx.AsyncClient(base_url=url + API_PREFIX, headers=headers, trust_env=False) as client,
    ):
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await client.post(f"/jobs/{job_id}/claim")
        after = await client.get(f"/jobs/{job_id}")  # a new connection: served
    assert after.status_code == 200
    assert after.json()["status"] == status
    assert faults.injected == {kind: 1}


async def test_before_on_uvicorn_is_a_503(emit: EmitServer) -> None:
    faults = FaultyServer(emit.app, every=2)
    async with serve(faults) as url, httpx.AsyncClient(base_url=url, trust_env=False) as client:
        statuses = [(await client.get("/health")).status_code for _ in range(4)]
    assert statuses == [200, 503, 200, 503]


async def statuses(faults: FaultyServer, requests: int, path: str = "/health") -> list[int]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=faults), base_url="http://emit.test"
    ) as client:
        return [(await client.get(path)).status_code for _ in range(requests)]


async def test_every_nth_of_the_matching_requests_fails(emit: EmitServer) -> None:
    faults = FaultyServer(emit.app, every=3, only=r"^GET /health$")
    assert await statuses(faults, 9) == [200, 200, 503] * 3
    assert await statuses(faults, 3, "/") == [200] * 3  # not matched: never fails
    assert (faults.matched, faults.total) == (9, 3)
    with faults.paused():
        assert await statuses(faults, 3) == [200] * 3
    assert faults.matched == 9  # paused requests are not counted


async def test_a_seeded_chance_fails_the_same_requests_each_time(emit: EmitServer) -> None:
    runs = [await statuses(FaultyServer(emit.app, chance=1 / 3, seed=11), 60) for _ in range(2)]
    assert runs[0] == runs[1]
    assert 10 <= runs[0].count(503) <= 30
    other = await statuses(FaultyServer(emit.app, chance=1 / 3, seed=12), 60)
    assert other != runs[0]


async def test_drop_alternates_before_and_after_with_every(emit: EmitServer) -> None:
    faults = FaultyServer(emit.app, kind="drop")
    async with through(faults) as client:
        for _ in range(4):
            with pytest.raises(Dropped):
                await client.get("/jobs/nope")
    assert [i.kind for i in faults.log] == ["before-drop", "after-drop"] * 2
    assert [i.lost_status for i in faults.log] == [None, 404] * 2


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        FaultyServer(None, kind="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not both"):
        FaultyServer(None, every=2, chance=0.5)
    with pytest.raises(ValueError, match="chance"):
        FaultyServer(None, chance=3)
