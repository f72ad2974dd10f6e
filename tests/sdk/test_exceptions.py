"""The error tree: each status mapped to its class, on the live server and on odd bodies."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from emit_push import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    EmitError,
    InvalidInputError,
    JobKilledError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
    _exceptions,
)
from emit_push._exceptions import parse_retry_after
from tests.conftest import OTHER_KEY, WORKER_KEY, LiveServer, make_config
from tests.sdk.conftest import Sdk


def test_the_tree_is_drawn_in_the_docstring() -> None:
    doc = _exceptions.__doc__ or ""
    for name in _exceptions.__all__:
        cls = getattr(_exceptions, name)
        if isinstance(cls, type):
            assert issubclass(cls, EmitError)
            assert name in doc, name
            assert cls.__doc__, name
    assert issubclass(JobKilledError, ConflictError)
    assert issubclass(InvalidInputError, ValueError)
    assert [c.status for c in (BadRequestError, NotFoundError, ConflictError)] == [400, 404, 409]
    assert RateLimitError.retryable
    assert ServerError.retryable
    assert APIConnectionError.retryable
    assert not ConflictError.retryable


async def test_statuses_of_the_live_server(sdk: Sdk) -> None:
    admin = sdk.client(max_retries=0)
    ref = await sdk(admin.jobs.create({"name": "e"}))

    async def raised(call: Any) -> APIError:
        with pytest.raises(APIError) as caught:
            await sdk(call())
        return caught.value

    unknown = await raised(lambda: sdk.client("emit_nobody", max_retries=0).jobs.get(ref.id))
    assert (type(unknown), unknown.status, unknown.code) == (
        AuthenticationError,
        401,
        "unauthorized",
    )
    scope = await raised(lambda: sdk.client(WORKER_KEY).jobs.create({"name": "x"}))
    assert (type(scope), scope.status) == (PermissionDeniedError, 403)
    assert scope.message == "Missing required scope: jobs:create"
    other = await raised(lambda: sdk.client(OTHER_KEY).jobs.get(ref.id))
    assert type(other) is PermissionDeniedError
    missing = await raised(lambda: admin.jobs.get("01NOSUCHJOB000000000000000"))
    assert (type(missing), missing.code) == (NotFoundError, "job_not_found")
    bad = await raised(lambda: admin.jobs.create({"name": "x", "max_retries": 99}))
    assert (type(bad), bad.status, bad.code) == (BadRequestError, 400, "invalid_request")
    assert "maxRetries" in bad.message
    big = await raised(
        lambda: admin.jobs.create({"name": "x", "payload": "a" * (1024 * 1024 + 10)})
    )
    assert (type(big), big.status, big.code) == (BadRequestError, 413, "payload_too_large")
    state = await raised(lambda: admin.jobs.ack(ref.id))
    assert (type(state), state.code) == (ConflictError, "invalid_state")
    assert state.method == "POST"
    assert state.url == f"{sdk.base_url}/jobs/{ref.id}/ack"
    assert str(state).startswith("409 invalid_state: Cannot ack job")
    await sdk(admin.jobs.kill(ref.id))
    killed = await raised(lambda: admin.jobs.complete(ref.id))
    assert (type(killed), killed.code) == (JobKilledError, "job_killed")


async def test_a_rate_limited_server_says_when_to_come_back(kind: str, tmp_path: Any) -> None:
    server = LiveServer(make_config(db_path=str(tmp_path / "r.sqlite3"), rate_limit=1))
    sdk = Sdk(kind, server.base_url)
    try:
        client = sdk.client(max_retries=0)
        await sdk(client.jobs.list())
        with pytest.raises(RateLimitError) as caught:
            await sdk(client.jobs.list())
        assert (caught.value.status, caught.value.code, caught.value.retry_after) == (
            429, "rate_limited", 1.0,
        )  # fmt: skip
    finally:
        await sdk.aclose()
        server.stop()


@pytest.mark.parametrize(
    ("response", "kind", "message", "code"),
    [
        (httpx.Response(500, text="upstream exploded"), ServerError, "upstream exploded", None),
        (httpx.Response(503, json={"message": "maintenance"}), ServerError, "maintenance", None),
        (
            httpx.Response(409, json={"error": {"message": "gone", "code": "job_killed"}}),
            JobKilledError, "gone", "job_killed",
        ),
        (httpx.Response(418, json=["odd"]), APIError, "I'm a teapot", None),
        (httpx.Response(422, json={"error": "nope", "code": "x"}), BadRequestError, "nope", "x"),
    ],
)  # fmt: skip
async def test_odd_error_bodies_are_read_leniently(
    offline: Sdk, response: httpx.Response, kind: type, message: str, code: str | None
) -> None:
    response.headers["x-request-id"] = "req_123"
    client = offline.mock(lambda request: response, max_retries=0)
    with pytest.raises(APIError) as caught:
        await offline(client.jobs.get("j1"))
    error = caught.value
    assert (type(error), error.status, error.message, error.code) == (
        kind, response.status_code, message, code,
    )  # fmt: skip
    assert error.request_id == "req_123"
    assert "[request id req_123]" in str(error)


async def test_an_unreadable_success_is_an_unexpected_response(offline: Sdk) -> None:
    client = offline.mock(lambda request: httpx.Response(200, json={"no": "id"}))
    with pytest.raises(UnexpectedResponseError) as caught:
        await offline(client.jobs.get("j1"))
    assert caught.value.status == 200
    assert isinstance(caught.value.__cause__, ValueError)


async def test_lenient_success_shapes(offline: Sdk) -> None:
    descriptor = {"id": "j1", "name": "n", "payload": {"a": 1}, "futureField": True}
    shapes = iter([descriptor, {"job": descriptor}, {"jobs": [descriptor]}])
    client = offline.mock(lambda request: httpx.Response(200, json=next(shapes)))
    for _ in range(3):
        job = await offline(client.jobs.claim("j1"))
        assert (job.id, job.payload, job.attempt_number, job.timeout_seconds) == (
            "j1",
            {"a": 1},
            0,
            300,
        )
        assert job.descriptor.model_extra == {"futureField": True}
        await offline.close(job)
    empty = offline.mock(lambda request: httpx.Response(204))
    state = await offline(empty.jobs.ack("j1"))
    assert (state.id, state.status) == ("j1", None)
    accepted = await offline(empty.jobs.append_logs("j1", [{"level": "info", "message": "m"}]))
    assert accepted.accepted == 0
    bare = offline.mock(lambda request: httpx.Response(201, json=[{"id": "a"}, {"id": "b"}]))
    refs = await offline(bare.jobs.create([{"name": "x"}, {"name": "y"}]))
    assert [(r.id, r.space_id) for r in refs] == [("a", bare.space_id), ("b", bare.space_id)]
    listed = offline.mock(lambda request: httpx.Response(200, json={"jobs": []}))
    assert await offline(listed.jobs.list()) == []


async def test_transport_errors_are_converted_at_the_boundary(offline: Sdk) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = offline.mock(refuse, max_retries=1)
    with pytest.raises(APIConnectionError) as caught:
        await offline(client.jobs.get("j1"))
    assert not caught.value.request_sent
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(offline.sleeps) == 1


def test_retry_after_reads_seconds_and_dates() -> None:
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


def test_every_error_can_be_asked_for_its_message_status_code_and_request_id() -> None:
    plain: list[EmitError] = [
        EmitError("x"),
        ConfigurationError("x"),
        InvalidInputError("x"),
        APIConnectionError("x", method="GET", url="u"),
        APITimeoutError("x", method="GET", url="u"),
    ]
    for error in plain:
        assert (error.status, error.code, error.request_id) == (None, None, None), error
        assert error.message == "x"
    assert (BadRequestError.status, JobKilledError.status, RateLimitError.status) == (400, 409, 429)
    answered = ServerError("x", status=502, code="bad_gateway", request_id="r1")
    assert (answered.status, answered.code, answered.request_id) == (502, "bad_gateway", "r1")
    assert answered.message == "x"
    assert NotFoundError("x").status == 404  # the class's status, when none is given


async def test_an_http_date_retry_after_is_honoured(offline: Sdk) -> None:
    later = datetime.now(UTC) + timedelta(seconds=10)
    answers = iter(
        [
            httpx.Response(
                429, headers={"retry-after": email.utils.format_datetime(later, usegmt=True)}
            ),
            httpx.Response(200, json={"id": "j1", "name": "n", "status": "pending"}),
        ]
    )
    client = offline.mock(lambda request: next(answers))
    assert (await offline(client.jobs.get("j1"))).id == "j1"
    [slept] = offline.sleeps
    assert 8 < slept <= 10


# -- a kill told by a 409 without a code ---------------------------------------------------

_CALLS: dict[str, Any] = {
    "progress": lambda job: job.progress(10, "m"),
    "checkpoint": lambda job: job.checkpoint({"at": 1}),
    "event": lambda job: job.event({"kind": "k"}),
    "keepalive": lambda job: job.keepalive(),
    "complete": lambda job: job.complete({"ok": True}),
    "fail": lambda job: job.fail("boom"),
    "ack": lambda job: job.ack(),
}


class _Service:
    """Claim works; every worker call answers a bare 409; the job reads as ``status``."""

    def __init__(self, status: str, body: Any = None) -> None:
        self.status = status
        self.body = body if body is not None else {"error": "Conflict"}
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.method} {request.url.path.removeprefix('/api/v1')}")
        if request.url.path.endswith("/claim"):
            return httpx.Response(200, json={"id": "j1", "name": "n"})
        if request.method == "GET":
            return httpx.Response(200, json={"id": "j1", "name": "n", "status": self.status})
        return httpx.Response(409, json=self.body)


@pytest.mark.parametrize("call", sorted(_CALLS))
async def test_a_409_without_a_code_on_a_killed_job_is_a_kill(offline: Sdk, call: str) -> None:
    service = _Service("killed")
    client = offline.mock(service, max_retries=0)
    job = await offline(client.jobs.claim("j1"))
    with pytest.raises(JobKilledError) as caught:
        await offline(_CALLS[call](job))
    assert caught.value.status == 409
    assert isinstance(caught.value.__cause__, ConflictError)
    assert job.killed
    assert service.seen[-2:] == [f"POST /jobs/j1/{call}", "GET /jobs/j1"]
    await offline.close(job)


async def test_other_409s_stay_conflicts(offline: Sdk) -> None:
    running = _Service("completed")  # a bare 409, and the job was not killed
    client = offline.mock(running, max_retries=0)
    job = await offline(client.jobs.claim("j1"))
    with pytest.raises(ConflictError) as caught:
        await offline(job.progress(10, "m"))
    assert type(caught.value) is ConflictError
    assert not job.killed
    coded = _Service("killed", {"error": "not running", "code": "invalid_state"})
    client = offline.mock(coded, max_retries=0)
    with pytest.raises(ConflictError):
        await offline(client.jobs.progress("j1", 10, "m"))
    assert coded.seen == ["POST /jobs/j1/progress"]  # a code says enough: no read-back
    await offline.close(job)
