"""The push protocol without I/O: authentication, validation, a failed claim's answer and
the HTTP answer."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emit_push import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    EmitError,
    JobKilledError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
)
from emit_push._framework.push import Push, PushAuth, PushResult, check_push, claim_answer

AUTH = PushAuth.of("s3cret", "Authorization")
OK = {"authorization": "Bearer s3cret"}


def check(body: object, headers: dict[str, str] = OK, **kw: object) -> Push | PushResult:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return check_push(raw, headers, auth=kw.pop("auth", AUTH), space_id="space-1", **kw)  # type: ignore[arg-type]


def test_a_good_push() -> None:
    body = {
        "type": "job.pending",
        "jobId": "01JAB_c-9",
        "spaceId": "space-1",
        "name": "email",
        "attemptNumber": 2,
        "timestamp": "2025-02-24T10:30:00.000Z",
        "future": {"fields": "ignored"},
    }
    assert check(body) == Push("01JAB_c-9", "email", 2)
    assert check({"jobId": "j"}) == Push("j")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong"},
        {"authorization": "s3cret"},
        {"authorization": "Basic s3cret"},
        {"authorization": "Bearer s3cret2"},
        {"x-emit-secret": "s3cret"},
    ],
)
def test_missing_or_wrong_secret_is_401(headers: dict[str, str]) -> None:
    result = check({"jobId": "j"}, headers)
    assert isinstance(result, PushResult)
    assert (result.http_status, result.code) == (401, "unauthorized")
    assert result.headers == {"www-authenticate": "Bearer"}
    assert "s3cret" not in json.dumps(result.body())


def test_secret_rotation_and_custom_headers() -> None:
    rotating = PushAuth.of(["old", "new"], "Authorization")
    for secret in ("old", "new"):
        assert check({"jobId": "j"}, {"authorization": f"bearer  {secret}"}, auth=rotating) == Push(
            "j"
        )
    from_env = PushAuth.of("old, new", "Authorization")
    assert from_env.secrets == ("old", "new")
    custom = PushAuth.of("s3cret", "X-Emit-Secret")
    assert check({"jobId": "j"}, {"x-emit-secret": "s3cret"}, auth=custom) == Push("j")
    assert isinstance(check({"jobId": "j"}, OK, auth=custom), PushResult)
    assert "s3cret" not in repr(custom)


def test_no_secret_accepts_everything() -> None:
    assert not PushAuth.of(None, "Authorization").enabled
    assert check({"jobId": "j"}, {}, auth=PushAuth.of(None, "Authorization")) == Push("j")
    assert check({"jobId": "j"}, {}, auth=PushAuth.of(" , ", "Authorization")) == Push("j")


def test_the_secret_is_checked_before_anything_is_parsed() -> None:
    result = check(b"not json", {})
    assert isinstance(result, PushResult)
    assert result.http_status == 401


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"", 400, "body is not valid JSON"),
        (b"{", 400, "body is not valid JSON"),
        (b'{"jobId": NaN}', 400, "body is not valid JSON"),
        (b"[1]", 400, "body must be a JSON object"),
        ({}, 400, "jobId: a non-empty string is required"),
        ({"jobId": ""}, 400, "jobId: a non-empty string is required"),
        ({"jobId": 5}, 400, "jobId: a non-empty string is required"),
        (
            {"jobId": "../../admin"},
            400,
            "jobId: at most 128 characters of A-Z, a-z, 0-9, '_' and '-'",
        ),
        ({"jobId": "a/b"}, 400, "jobId: at most 128 characters of A-Z, a-z, 0-9, '_' and '-'"),
        ({"jobId": "a?x=1"}, 400, "jobId: at most 128 characters of A-Z, a-z, 0-9, '_' and '-'"),
        ({"jobId": "x" * 129}, 400, "jobId: at most 128 characters of A-Z, a-z, 0-9, '_' and '-'"),
        ({"jobId": "é"}, 400, "jobId: at most 128 characters of A-Z, a-z, 0-9, '_' and '-'"),
        ({"jobId": "j", "type": "job.done"}, 400, "type: expected 'job.pending', got 'job.done'"),
        ({"jobId": "j", "name": ""}, 400, "name: must be a non-empty string"),
        ({"jobId": "j", "name": 3}, 400, "name: must be a non-empty string"),
        ({"jobId": "j", "spaceId": "space-2"}, 403, "spaceId: not this endpoint's space"),
    ],
)
def test_malformed_pushes_are_refused_with_a_reason(
    body: object, status: int, message: str
) -> None:
    result = check(body)
    assert isinstance(result, PushResult)
    assert (result.http_status, result.error) == (status, message)
    code, headers, content = result.http()
    assert code == status
    assert ("content-type", "application/json") in headers
    assert json.loads(content) == {"error": message, "code": result.code}


def test_size_cap() -> None:
    body = json.dumps({"jobId": "j", "pad": "x" * 100}).encode()
    result = check_push(body, OK, auth=AUTH, space_id=None, max_bytes=64)
    assert isinstance(result, PushResult)
    assert (result.http_status, result.code) == (413, "payload_too_large")


def test_job_id_of_exactly_128_characters_is_fine() -> None:
    assert check({"jobId": "a" * 128}) == Push("a" * 128)


def test_outcome_bodies() -> None:
    done = PushResult("completed", "j1", name="email", attempt_number=0)
    assert done.body() == {
        "status": "completed",
        "jobId": "j1",
        "name": "email",
        "attemptNumber": 0,
    }
    failed = PushResult("failed", "j2", error="ValueError: boom", reason="deadline exceeded")
    assert failed.body() == {
        "status": "failed",
        "jobId": "j2",
        "reason": "deadline exceeded",
        "error": "ValueError: boom",
    }
    assert failed.http()[0] == 200


def api(kind: type[EmitError], status: int | None = None, code: str | None = None) -> EmitError:
    if kind in (APIConnectionError, APITimeoutError):
        return kind("no answer", method="POST", url="http://127.0.0.1/api/v1/jobs/job_1/claim")
    return kind("refused", status=status, code=code)  # type: ignore[call-arg]


# -- the claim ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "http", "words"),
    [
        (api(ConflictError, 409, "invalid_state"), "skipped", 200, "already claimed"),
        (api(JobKilledError, 409, "job_killed"), "skipped", 200, "already claimed"),
        (api(NotFoundError, 404), "skipped", 200, "no such job"),
        (api(APIConnectionError), None, 503, "could not be reached"),
        (api(APITimeoutError), None, 503, "could not be reached"),
        (api(ServerError, 502), None, 503, "could not be reached"),
        (api(RateLimitError, 429), None, 503, "could not be reached"),
        (api(AuthenticationError, 401), None, 500, "refused the claim"),
        (api(PermissionDeniedError, 403), None, 500, "refused the claim"),
        (api(BadRequestError, 400), None, 500, "refused the claim"),
        (UnexpectedResponseError("bad body"), None, 500, "refused the claim"),
    ],
)
def test_a_failed_claim_is_answered(error: EmitError, status: str, http: int, words: str) -> None:
    answer = claim_answer("job_1", "resize", error)
    assert (answer.status, answer.http_status) == (status, http)
    assert words in (answer.reason or answer.error or "")
    assert answer.job_id == "job_1"


@given(body=st.binary(max_size=200), secret=st.sampled_from(["Bearer s3cret", "", "Bearer x"]))
def test_any_bytes_give_a_push_or_a_4xx(body: bytes, secret: str) -> None:
    result = check_push(body, {"authorization": secret}, auth=AUTH, space_id="space-1")
    if isinstance(result, PushResult):
        assert 400 <= result.http_status < 500
        json.loads(result.http()[2])
    else:
        assert secret == "Bearer s3cret"
