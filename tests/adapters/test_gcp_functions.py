"""The Cloud Functions adapter in-process: a body is read no further than its cap."""

from __future__ import annotations

import io
import json

import pytest

from emit_push import EmitPush
from emit_push.adapters.gcp_functions import http_function
from tests.conftest import SPACE, WORKER_KEY


class Endless:
    """A chunked request body that never ends."""

    def __init__(self) -> None:
        self.given = 0

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            raise AssertionError("the whole of an endless body was asked for")
        self.given += size
        return b"x" * size


class ChunkedRequest:
    headers = {"authorization": "Bearer s3", "content-type": "application/json"}
    content_length = None

    def __init__(self) -> None:
        self.stream = Endless()

    def get_data(self) -> bytes:
        raise AssertionError("the whole of an endless body was asked for")


def test_a_cloud_function_reads_no_more_of_a_chunked_body_than_it_may_take() -> None:
    app = EmitPush(
        space_id=SPACE, api_key=WORKER_KEY, base_url="http://127.0.0.1:9", push_secret="s3"
    )
    app.on_job("thumbnail")(lambda job: None)
    request = ChunkedRequest()
    content, status, _ = http_function(app)(request)
    assert (status, json.loads(content)["code"]) == (413, "payload_too_large")
    assert request.stream.given == app.runner.max_push_bytes + 1


class PushRequest:
    headers = {"authorization": "Bearer s3", "content-type": "application/json"}

    def __init__(self, body: bytes) -> None:
        self.stream = io.BytesIO(body)


def test_without_settings_the_function_is_made_and_a_push_is_answered_500_naming_them(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("EMIT_SPACE_ID", "EMIT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    app = EmitPush(push_secret="s3")
    app.on_job("thumbnail")(lambda job: None)
    function = http_function(app)  # a warning, no error
    assert [r.levelname for r in caplog.records if "EMIT_API_KEY" in r.getMessage()] == ["WARNING"]
    content, status, _ = function(PushRequest(b'{"jobId": "job_1", "name": "thumbnail"}'))
    assert (status, json.loads(content)) == (
        500,
        {
            "error": "EmitPush needs space_id= (or EMIT_SPACE_ID) and api_key= (or EMIT_API_KEY)",
            "code": "not_configured",
        },
    )
