"""Tests of the handlers in examples/fastapi_app.py, with emit_push.testing: copy this file.

``run_handler`` runs one handler on a payload with a recording job: no server, no network,
the same steps as a real push (ack, typed payload, progress, logs, complete or fail).
``emit_local`` is the local emit server, in-process; ``push`` sends the app the
``job.pending`` push that emit.run would send and reads the job back as stored.

    pytest examples/test_fastapi_app.py
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType

import pytest

from emit_push.testing import LocalEmit, run_handler

# In your project, put this line in the top-level conftest.py instead.
pytest_plugins = ["emit_push.testing.pytest_plugin"]

pytestmark = pytest.mark.anyio  # anyio's pytest plugin comes with emit-push

TRANSCODE = {"input_url": "s3://in/movie.mov", "output_key": "movie.mp4"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # emit-push runs on asyncio


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    """The example module. It builds its ASGI app at import, and that checks the settings:
    give it some (the tests never use them: the helpers bring their own service)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("EMIT_SPACE_ID", "01JEXAMPLESPACE00000000000")
        env.setenv("EMIT_API_KEY", "emit_not_used_by_the_tests")
        yield importlib.import_module("examples.fastapi_app")


# -- one handler at a time ---------------------------------------------------------------


async def test_transcode_reports_its_steps_and_returns_the_output(example: ModuleType) -> None:
    recording = await run_handler(example.app, "transcode", TRANSCODE)
    assert recording.status == "completed"
    assert recording.result == {"outputUrl": "s3://final/movie.mp4"}
    assert [(p.percent, p.message) for p in recording.progress] == [
        (10, "Downloading source"),
        (100, "Uploaded"),
    ]
    assert recording.checkpoints == [{"offsetSeconds": 120}]
    assert recording.events == [{"kind": "codec", "value": "h264"}]
    assert [(e.level, e.message, e.metadata) for e in recording.logs] == [
        ("info", "starting", {"attempt": 0}),
        ("info", "done", {"output": "movie.mp4"}),
    ]


async def test_thumbnail_fills_in_the_default_width(example: ModuleType) -> None:
    recording = await run_handler(example.app, "thumbnail", {"image_url": "s3://in/cat.png"})
    assert recording.result == {"thumbnail": "s3://in/cat.png", "width": 320}
    assert recording.actions == ["ack", "progress", "complete"]


async def test_a_payload_without_the_output_key_fails_the_job(example: ModuleType) -> None:
    recording = await run_handler(example.app, "transcode", {"input_url": "s3://in/movie.mov"})
    assert recording.status == "failed"
    assert recording.error == "invalid payload (Transcode): output_key: Field required"
    assert recording.will_retry


async def test_a_kill_stops_transcode_before_the_upload(example: ModuleType) -> None:
    # Killed once ack and the first progress report are answered: the checkpoint meets
    # 409 job_killed, the function is cancelled, and nothing more is sent.
    recording = await run_handler(example.app, "transcode", TRANSCODE, kill_after=2)
    assert recording.status == "killed"
    assert recording.actions == ["ack", "progress", "checkpoint"]
    assert recording.checkpoints == []
    assert recording.result is None


async def test_the_last_attempt_that_fails_leaves_the_job_dead(example: ModuleType) -> None:
    recording = await run_handler(
        example.app, "transcode", {"input_url": 1}, attempt_number=3, max_retries=3
    )
    assert (recording.status, recording.job_status) == ("failed", "dead")


# -- end to end, against the local emit server -------------------------------------------


async def test_a_push_runs_transcode_to_completion(
    example: ModuleType, emit_local: LocalEmit
) -> None:
    outcome = await emit_local.push(example.app, "transcode", TRANSCODE, via="asgi")
    assert outcome.result.body() == {
        "status": "completed",
        "jobId": outcome.job_id,
        "name": "transcode",
        "attemptNumber": 0,
    }
    assert outcome.job.status == "completed"
    assert outcome.job.result == {"outputUrl": "s3://final/movie.mp4"}
    assert [e.message for e in outcome.logs] == ["starting", "done"]


async def test_a_push_for_another_job_type_is_ignored(
    example: ModuleType, emit_local: LocalEmit
) -> None:
    outcome = await emit_local.push(example.app, "send-email", {"to": "a@example.com"})
    assert outcome.status == "ignored"
    assert outcome.job.status == "pending"  # left for the endpoint that handles it
