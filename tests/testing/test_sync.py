"""The sync twins: ``run_handler_sync`` and ``SyncLocalEmit`` (and its fixture), for plain
``def`` tests; ``Recording.job_id``."""

from __future__ import annotations

from typing import Any

import pytest

from emit_push import EmitClient, EmitPush, Job, SyncJob
from emit_push.testing import Recording, SyncLocalEmit, run_handler, run_handler_sync
from tests.testing.test_testing import PAYLOAD, make_app


def _seen(recording: Recording) -> tuple[Any, ...]:
    """What a run sent, without what depends on timing (log batches, their calls)."""
    return (
        recording.job_id, recording.status, recording.job_status, recording.result,
        recording.progress, recording.checkpoints, recording.events, recording.actions,
        [(entry.level, entry.message) for entry in recording.logs],
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_run_handler_sync_records_what_run_handler_records(kind: str) -> None:
    app = make_app(kind)
    recording = run_handler_sync(app, "resize", PAYLOAD, job_id="job_42", attempt_number=1)
    assert recording.job_id == "job_42"
    assert recording.status == "completed"
    assert recording.result == {"url": "s3://a?w", "width": 320}
    assert recording.actions == ["ack", "progress", "checkpoint", "event", "complete"]
    assert [(e.level, e.message) for e in recording.logs] == [
        ("info", "starting"),
        ("warn", "done"),
    ]

    async def the_async_one() -> Recording:
        return await run_handler(app, "resize", PAYLOAD, job_id="job_42", attempt_number=1)

    import asyncio

    assert _seen(asyncio.run(the_async_one())) == _seen(recording)


def test_run_handler_sync_runs_a_bare_function_with_options() -> None:
    def greet(job: SyncJob) -> None:
        job.complete({"hello": job.payload["who"]})

    recording = run_handler_sync(greet, {"who": "bob"}, auto_complete=False)
    assert (recording.job_id, recording.status) == ("test-job", "completed")
    assert recording.result == {"hello": "bob"}
    failed = run_handler_sync(greet, {}, max_retries=0)
    assert (failed.status, failed.job_status) == ("failed", "dead")
    assert failed.error == "KeyError: 'who'"


async def test_run_handler_sync_refuses_to_block_a_running_loop() -> None:
    app = make_app("async")
    with pytest.raises(RuntimeError, match=r"await run_handler\(\.\.\.\)"):
        run_handler_sync(app, "resize", PAYLOAD)
    # No coroutine was made and left unawaited (warnings are errors here).
    assert (await run_handler(app, "resize", PAYLOAD)).job_id == "test-job"


# -- SyncLocalEmit ----------------------------------------------------------------------


@pytest.mark.parametrize("via", ["handle_push", "asgi"])
@pytest.mark.parametrize("kind", ["async", "sync"])
def test_push_in_a_plain_test(emit_local_sync: SyncLocalEmit, kind: str, via: Any) -> None:
    app = make_app(kind, push_secret="s3cret")
    outcome = emit_local_sync.push(app, "resize", PAYLOAD, via=via, max_retries=1)
    assert outcome.status == "completed"
    assert outcome.job.result == {"url": "s3://a?w", "width": 320}
    assert outcome.job.max_retries == 1
    assert [(e.level, e.message) for e in outcome.logs] == [("info", "starting"), ("warn", "done")]
    assert outcome.job_id is not None
    assert emit_local_sync.push(app, job_id=outcome.job_id).status == "skipped"
    assert app.runner.given_client is None  # the app itself was not changed


def test_the_other_methods_in_a_plain_test(emit_local_sync: SyncLocalEmit) -> None:
    local = emit_local_sync
    job_id = local.create("resize", PAYLOAD, timeout_seconds=60)
    assert local.job(job_id).status == "pending"
    with local.client(api_key=local.worker_key) as worker:
        assert isinstance(worker, EmitClient)
        [claimed] = worker.jobs.poll(types="resize")
    assert claimed.id == job_id
    assert local.job(job_id).status == "delivered"
    assert local.advance(59) == 0
    assert local.advance(2) == 1  # nobody acknowledged it in time
    assert local.job(job_id).status == "pending"
    assert local.http.get(f"/jobs/{job_id}").json()["status"] == "pending"
    assert local.credentials.space_id == local.space_id
    assert local.logs(job_id) == []
    bound = local.bind(make_app("async"))
    assert bound.client().space_id == local.space_id
    assert local.local.server is local.server


def test_a_client_works_a_job_from_start_to_end(emit_local_sync: SyncLocalEmit) -> None:
    client = emit_local_sync.client()  # closed with the server
    ref = client.jobs.create({"name": "resize", "payload": PAYLOAD})
    [job] = client.jobs.poll(types="resize")
    with job:
        job.ack()
        job.log.info("polled")
        job.complete({"ok": True})
    assert emit_local_sync.job(ref.id).result == {"ok": True}
    assert [entry.message for entry in emit_local_sync.logs(ref.id)] == ["polled"]


def test_sync_local_emit_without_the_fixture() -> None:
    local = SyncLocalEmit(rate_limit=1000)
    with pytest.raises(RuntimeError, match="not started"):
        local.create("resize")
    app = EmitPush(push_secret=None)  # no settings: none needed against the local server

    @app.on_job("hello")
    async def hello(job: Job) -> str:
        return "hi"

    with local:
        with pytest.raises(RuntimeError, match="running already"):
            local.__enter__()
        assert local.push(app, "hello").job.result == "hi"
    with pytest.raises(RuntimeError, match="not started"):
        local.job("x")
