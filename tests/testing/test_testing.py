"""emit_push.testing: run_handler's recording job, LocalEmit, push, and the fixtures.

Each behaviour of a handler is checked for ``async def`` and ``def`` handlers (``kind``).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from emit_push import (
    AsyncEmitClient,
    BadRequestError,
    DeadlineExceeded,
    EmitPush,
    Job,
    JobKilledError,
    LoggerOptions,
    SyncJob,
)
from emit_push.server import SystemClock
from emit_push.testing import LocalEmit, ProgressReport, RecordedCall, run_handler
from tests.waiting import eventually


class Resize(BaseModel):
    url: str
    width: int


PAYLOAD = {"url": "s3://a", "width": 640}


@pytest.fixture(params=["async", "sync"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_app(kind: str, **options: Any) -> EmitPush:
    """An app with a ``resize`` handler of the given kind that uses every job call."""
    app = EmitPush(space_id="01JUNUSEDSPACE000000000000", api_key="emit_unused", **options)
    if kind == "async":

        @app.on_job("resize")
        async def resize(job: Job[Resize]) -> Resize:
            job.log.info("starting", metadata={"attempt": job.attempt_number})
            await job.progress(40, "resizing", sub_progress={"decode": {"percent": 100}})
            await job.checkpoint({"step": 1})
            await job.event({"kind": "note"})
            job.log.warn("done")
            return Resize(url=job.payload.url + "?w", width=job.payload.width // 2)
    else:

        @app.on_job("resize")
        def resize_sync(job: SyncJob[Resize]) -> Resize:
            job.log.info("starting", metadata={"attempt": job.attempt_number})
            job.progress(40, "resizing", sub_progress={"decode": {"percent": 100}})
            job.checkpoint({"step": 1})
            job.event({"kind": "note"})
            job.log.warn("done")
            return Resize(url=job.payload.url + "?w", width=job.payload.width // 2)

    return app


# -- run_handler: what a run sends -----------------------------------------------------


async def test_run_handler_records_everything_a_run_sends(kind: str) -> None:
    recording = await run_handler(make_app(kind), "resize", PAYLOAD)
    assert recording.status == "completed"
    assert recording.job_status == "completed"
    assert recording.result == {"url": "s3://a?w", "width": 320}
    assert recording.error is None
    assert recording.exception is None
    assert recording.progress == [ProgressReport(40, "resizing", {"decode": {"percent": 100}})]
    assert recording.checkpoints == [{"step": 1}]
    assert recording.events == [{"kind": "note"}]
    assert [(e.level, e.message, e.metadata, e.seq) for e in recording.logs] == [
        ("info", "starting", {"attempt": 0}, 1),
        ("warn", "done", None, 2),
    ]
    assert recording.actions == ["ack", "progress", "checkpoint", "event", "complete"]
    assert recording.calls[-2:] == [
        RecordedCall("POST", "/jobs/test-job/logs", recording.calls[-2].body, 200),
        RecordedCall("POST", "/jobs/test-job/complete", {"result": recording.result}, 200),
    ]  # the logs go out before the job completes
    assert recording.push_result.body() == {
        "status": "completed", "jobId": "test-job", "name": "resize", "attemptNumber": 0,
    }  # fmt: skip
    assert not recording.will_retry
    assert not recording.killed_by_test


async def test_logs_are_decoded_without_gzip_too() -> None:
    app = make_app("async", logger=LoggerOptions(gzip=False))
    recording = await run_handler(app, "resize", PAYLOAD)
    assert [e.message for e in recording.logs] == ["starting", "done"]


async def test_a_bare_function_runs_with_the_default_options(kind: str) -> None:
    if kind == "async":

        async def handler(job: Job[Resize]) -> dict[str, Any]:
            return {"width": job.payload.width, "name": job.name, "attempt": job.attempt_number}
    else:

        def handler(job: SyncJob[Resize]) -> dict[str, Any]:  # type: ignore[misc]
            return {"width": job.payload.width, "name": job.name, "attempt": job.attempt_number}

    recording = await run_handler(handler, Resize(url="s3://a", width=8), attempt_number=2)
    assert recording.result == {"width": 8, "name": "handler", "attempt": 2}
    named = await run_handler(handler, PAYLOAD, name="resize", job_id="job-7")
    assert named.result == {"width": 640, "name": "resize", "attempt": 0}
    assert named.calls[0].path == "/jobs/job-7/ack"


async def test_options_override_the_handlers() -> None:
    recording = await run_handler(make_app("async"), "resize", PAYLOAD, auto_complete=False)
    assert recording.status == "running"
    assert recording.job_status == "running"  # left to the handler, which did not
    assert recording.result is None
    assert recording.reason == "left to the handler (auto_complete is off)"

    async def quiet(job: Job) -> None:
        pass

    unacked = await run_handler(quiet, auto_ack=False, auto_complete=False)
    assert unacked.actions == []
    assert unacked.job_status == "delivered"


async def test_a_payload_that_does_not_fit_fails_the_job(kind: str) -> None:
    recording = await run_handler(make_app(kind), "resize", {"url": "s3://a"})
    assert recording.status == "failed"
    assert recording.error == "invalid payload (Resize): width: Field required"
    assert recording.reason == "invalid payload"
    assert recording.will_retry
    assert recording.actions == ["ack", "fail"]


async def test_an_exception_fails_the_job_and_is_kept(kind: str) -> None:
    seen: list[BaseException] = []
    app = EmitPush(space_id="s", api_key="k", on_error=lambda exc, job: seen.append(exc))
    if kind == "async":

        @app.on_job("flaky")
        async def flaky(job: Job) -> None:
            job.log.error("about to fail")
            raise ValueError("flaky upstream")
    else:

        @app.on_job("flaky")
        def flaky_sync(job: SyncJob) -> None:
            job.log.error("about to fail")
            raise ValueError("flaky upstream")

    first = await run_handler(app, "flaky")
    assert (first.status, first.job_status, first.will_retry) == ("failed", "pending", True)
    assert first.error == "ValueError: flaky upstream"
    assert isinstance(first.exception, ValueError)
    assert seen == [first.exception]  # the app's on_error ran, as in production
    assert [(e.level, e.message) for e in first.logs][0] == ("error", "about to fail")
    assert [e.message for e in first.logs][1].endswith("ValueError: flaky upstream")
    assert first.calls[-1] == RecordedCall(
        "POST", "/jobs/test-job/fail", {"error": "ValueError: flaky upstream"}, 200
    )
    last = await run_handler(app, "flaky", attempt_number=3, max_retries=3)
    assert (last.status, last.job_status, last.will_retry) == ("failed", "dead", False)


async def test_a_progress_report_the_service_refuses_fails_the_job() -> None:
    refused: list[BadRequestError] = []

    async def overdone(job: Job) -> None:
        try:
            await job.progress(150, "too far")
        except BadRequestError as exc:
            refused.append(exc)
            raise

    recording = await run_handler(overdone)
    assert recording.status == "failed"
    assert recording.error is not None
    assert "percent: must be between 0 and 100" in recording.error
    assert recording.calls[1].status == 400
    assert [exc.status for exc in refused] == [400]


async def test_the_apps_middleware_runs_and_the_app_is_left_as_it_was() -> None:
    app = make_app("async")
    runs: list[str] = []

    @app.middleware
    async def count(job: Job, call_next: Callable[[], Any]) -> Any:
        runs.append(job.name)
        return await call_next()

    before = (dict(app.handlers), list(app.runner.middleware), app.runner.given_client)
    await run_handler(app, "resize", PAYLOAD, deadline_margin=0.5)
    assert runs == ["resize"]
    assert (dict(app.handlers), list(app.runner.middleware), app.runner.given_client) == before


async def test_the_handler_reads_its_job_back() -> None:
    async def reads(job: Job) -> dict[str, Any]:
        await job.progress(30, "a third")
        await job.checkpoint({"at": 1})
        details = await job.get_details()
        progress = await job.get_progress()
        assert details.model_extra is not None
        assert progress.progress is not None
        return {
            "status": details.status,
            "checkpoint": details.model_extra["checkpoint"],
            "percent": progress.progress.percent,
        }

    recording = await run_handler(reads, {"a": 1})
    assert recording.result == {"status": "running", "checkpoint": {"at": 1}, "percent": 30}
    assert recording.actions == ["ack", "progress", "checkpoint", "complete"]
    assert [(c.method, c.action) for c in recording.calls if c.method == "GET"] == [
        ("GET", "get"),
        ("GET", "progress"),
    ]


async def test_stop_on_error_lets_the_exception_through() -> None:
    async def boom(job: Job) -> None:
        raise ValueError("for the platform to see")

    with pytest.raises(ValueError, match="for the platform to see"):
        await run_handler(boom, stop_on_error=True)


async def test_a_catch_all_handler_runs_for_any_name() -> None:
    app = EmitPush(space_id="s", api_key="k")

    @app.on_job("*")
    async def anything(job: Job) -> str:
        return job.name

    assert (await run_handler(app, "whatever")).result == "whatever"


async def test_misuse_is_refused_at_once() -> None:
    app = make_app("async")
    with pytest.raises(LookupError, match="no handler for 'nope'"):
        await run_handler(app, "nope")
    with pytest.raises(TypeError, match="unknown job options \\['auto_complet'\\]"):
        await run_handler(app, "resize", PAYLOAD, auto_complet=False)
    with pytest.raises(TypeError, match="JSON"):
        await run_handler(app, "resize", {"when": object()})
    with pytest.raises(TypeError, match="kill_after"):
        await run_handler(app, "resize", PAYLOAD, kill_after=-1)


# -- run_handler: kills and deadlines --------------------------------------------------


async def test_a_kill_stops_the_function_and_nothing_more_is_sent(kind: str) -> None:
    recording = await run_handler(make_app(kind), "resize", PAYLOAD, kill_after=1)
    assert recording.status == "killed"
    assert recording.job_status == "killed"
    assert recording.killed_by_test
    assert recording.reason == "killed while running"
    assert recording.actions == ["ack", "progress"]  # refused with 409, and then nothing
    assert [c.status for c in recording.calls if c.action == "progress"] == [409]
    assert recording.progress == []
    assert recording.result is None
    assert [e.message for e in recording.logs] == ["starting"]  # flushed all the same


async def test_a_kill_before_the_start_runs_nothing() -> None:
    ran: list[bool] = []

    async def never(job: Job) -> None:
        ran.append(True)

    recording = await run_handler(never, kill_after=0)
    assert (recording.status, recording.reason) == ("killed", "killed before it started")
    assert ran == []


async def test_a_kill_after_a_condition(kind: str) -> None:
    reached: list[float] = []
    if kind == "async":

        async def steps(job: Job) -> None:
            for percent in (25, 50, 75, 100):
                await job.progress(percent, "step")
                reached.append(percent)
    else:

        def steps(job: SyncJob) -> None:  # type: ignore[misc]
            for percent in (25, 50, 75, 100):
                try:
                    job.progress(percent, "step")
                except JobKilledError:
                    reached.append(-1)  # the kill reaches a def function at its next call
                    raise
                reached.append(percent)

    def at_half(call: RecordedCall) -> bool:
        return call.action == "progress" and call.body["percent"] >= 50

    recording = await run_handler(steps, kill_after=at_half)
    assert recording.status == "killed"
    assert [p.percent for p in recording.progress] == [25, 50]
    assert recording.actions == ["ack", "progress", "progress", "progress"]
    if kind == "sync":
        await eventually(lambda: -1 in reached, message="the def function stopped")
    assert reached == ([25, 50] if kind == "async" else [25, 50, -1])


async def test_a_keepalive_notices_a_kill_while_the_function_waits() -> None:
    async def waits(job: Job) -> None:
        await asyncio.sleep(10)

    started = time.monotonic()
    recording = await run_handler(
        waits, timeout_seconds=1, kill_after=lambda call: call.action == "keepalive"
    )
    assert recording.status == "killed"
    assert recording.actions == ["ack", "keepalive", "keepalive"]  # every third of a second
    assert time.monotonic() - started < 5


async def test_the_function_may_settle_the_job_itself() -> None:
    async def gives_up(job: Job) -> None:
        await job.kill("not worth it")

    recording = await run_handler(gives_up, max_retries=0)
    assert (recording.status, recording.job_status) == ("killed", "killed")
    assert not recording.killed_by_test
    assert recording.actions == ["ack", "kill"]


async def test_the_deadline_stops_the_function_and_fails_the_job(kind: str) -> None:
    seen: list[float | None] = []
    stopped: list[str] = []
    if kind == "async":

        async def slow(job: Job) -> None:
            seen.append(job.remaining())
            await asyncio.sleep(10)
    else:

        def slow(job: SyncJob) -> None:  # type: ignore[misc]
            seen.append(job.remaining())
            try:
                while True:
                    time.sleep(0.02)
                    job.keepalive()
            except DeadlineExceeded:
                stopped.append("deadline")  # its next call told it to stop
                raise

    started = time.monotonic()
    recording = await run_handler(slow, remaining_time=0.5, deadline_margin=0.3)
    assert time.monotonic() - started < 2
    assert recording.status == "failed"
    assert recording.error == "deadline exceeded"
    assert recording.reason == "deadline exceeded"
    assert recording.will_retry  # at once, not at the job's timeout
    assert seen[0] is not None
    assert 0 < seen[0] <= 0.5
    assert recording.actions[0] == "ack"
    assert recording.actions[-1] == "fail"
    if kind == "sync":
        # A def function stops at its next job call, in its thread: give it the time.
        await eventually(lambda: stopped == ["deadline"], message="the function stopped")


# -- LocalEmit and push ---------------------------------------------------------------


@pytest.mark.parametrize("via", ["handle_push", "asgi"])
async def test_push_runs_the_job_through_the_apps_push_path(
    emit_local: LocalEmit, kind: str, via: Any
) -> None:
    app = make_app(kind, push_secret="s3cret")
    outcome = await emit_local.push(app, "resize", PAYLOAD, via=via, max_retries=1)
    assert outcome.status == "completed"
    assert outcome.result.http_status == 200
    assert outcome.result.body() == {
        "status": "completed", "jobId": outcome.job_id, "name": "resize", "attemptNumber": 0,
    }  # fmt: skip
    assert outcome.job.status == "completed"
    assert outcome.job.result == {"url": "s3://a?w", "width": 320}
    assert outcome.job.max_retries == 1
    assert outcome.job.model_extra is not None
    assert outcome.job.model_extra["checkpoint"] == {"step": 1}
    assert [e.type for e in outcome.job.events] == [
        "created", "delivered", "running", "progress", "checkpoint", "event", "completed",
    ]  # fmt: skip
    assert [(e.level, e.message) for e in outcome.logs] == [("info", "starting"), ("warn", "done")]
    assert app.runner.given_client is None  # the app itself was not changed


async def test_push_ignores_and_skips_as_in_production(emit_local: LocalEmit) -> None:
    app = make_app("async")
    ignored = await emit_local.push(app, "transcode", {"input": "x"})
    assert ignored.status == "ignored"
    assert ignored.job.status == "pending"  # not claimed: another endpoint may take it

    done = await emit_local.push(app, "resize", PAYLOAD)
    assert done.job_id is not None
    again = await emit_local.push(app, job_id=done.job_id)  # a duplicate push
    assert (again.status, again.result.reason) == ("skipped", "already claimed")

    unknown = await emit_local.push(app, job_id="01JNOSUCHJOB00000000000000")
    assert (unknown.status, unknown.result.reason, unknown.stored) == (
        "skipped", "no such job", None,
    )  # fmt: skip
    with pytest.raises(LookupError, match="no job '01JNOSUCHJOB00000000000000'"):
        unknown.job  # noqa: B018


async def test_push_carries_the_apps_secret_unless_told_otherwise(emit_local: LocalEmit) -> None:
    app = make_app("async", push_secret=["old", "new"], push_secret_header="X-Emit-Secret")
    assert (await emit_local.push(app, "resize", PAYLOAD)).status == "completed"
    refused = await emit_local.push(app, "resize", PAYLOAD, headers={}, via="asgi")
    assert refused.status is None
    assert (refused.result.http_status, refused.result.code) == (401, "unauthorized")
    assert refused.job.status == "pending"


async def test_a_failed_job_runs_again_on_the_next_push(emit_local: LocalEmit) -> None:
    app = EmitPush(space_id="s", api_key="k", push_secret=None)

    @app.on_job("flaky")
    async def flaky(job: Job) -> dict[str, int]:
        if job.attempt_number == 0:
            raise RuntimeError("first attempt")
        return {"attempt": job.attempt_number}

    first = await emit_local.push(app, "flaky")
    assert (first.status, first.result.error) == ("failed", "RuntimeError: first attempt")
    assert (first.job.status, first.job.attempt_number) == ("pending", 1)
    assert first.job_id is not None  # for mypy
    second = await emit_local.push(app, job_id=first.job_id)
    assert second.status == "completed"
    assert second.job.result == {"attempt": 1}


@pytest.mark.parametrize("via", ["handle_push", "asgi"])
async def test_push_passes_the_platforms_remaining_time(emit_local: LocalEmit, via: Any) -> None:
    app = EmitPush(space_id="s", api_key="k", push_secret=None)
    seen: list[float | None] = []

    @app.on_job("timed")
    async def timed(job: Job) -> None:
        seen.append(job.remaining())

    outcome = await emit_local.push(app, "timed", via=via, remaining_time=30)
    assert outcome.status == "completed"
    assert seen[0] is not None
    assert 25 < seen[0] <= 30


async def test_bind_copies_the_app(emit_local: LocalEmit) -> None:
    app = make_app("async")
    bound = emit_local.bind(app)
    assert bound is not app
    assert emit_local.bind(app) is bound
    assert emit_local.bind(bound) is bound

    @bound.on_job("extra")
    async def extra(job: Job) -> None:
        pass

    assert sorted(bound.handlers) == ["extra", "resize"]
    assert sorted(app.handlers) == ["resize"]
    assert bound.client().space_id == emit_local.space_id


async def test_the_fixtures_and_the_helpers(
    emit_local: LocalEmit, emit_client: AsyncEmitClient
) -> None:
    assert emit_local.credentials.space_id == emit_client.space_id == emit_local.space_id
    ref = await emit_client.jobs.create({"name": "resize", "payload": PAYLOAD})
    [claimed] = await emit_client.jobs.poll(types="resize")
    async with claimed:
        await claimed.ack()
        claimed.log.info("polled")
        await claimed.complete({"ok": True})
    assert (await emit_local.job(ref.id)).result == {"ok": True}
    assert [e.message for e in await emit_local.logs(ref.id)] == ["polled"]
    answer = await emit_local.http.get(f"/jobs/{ref.id}")
    assert answer.json()["status"] == "completed"


async def test_advance_fires_the_servers_timers(
    emit_local: LocalEmit, emit_client: AsyncEmitClient
) -> None:
    job_id = await emit_local.create("resize", PAYLOAD, timeout_seconds=60)
    await emit_client.jobs.claim(job_id)
    assert (await emit_local.job(job_id)).status == "delivered"
    assert await emit_local.advance(59) == 0
    assert await emit_local.advance(2) == 1  # nobody acknowledged it in time
    assert (await emit_local.job(job_id)).status == "pending"


async def test_local_emit_without_the_fixture() -> None:
    async with LocalEmit(rate_limit=1000) as local:
        job_id = await local.create("resize", PAYLOAD)
        assert (await local.job(job_id)).status == "pending"
    real_time = LocalEmit(clock=SystemClock())
    with pytest.raises(TypeError, match="ManualClock"):
        await real_time.advance(1)


def test_the_module_imports_without_pytest_or_the_server() -> None:
    code = (
        "import sys; sys.modules['pytest'] = None; "
        "import emit_push.testing; "
        "print([m for m in sys.modules if m.startswith(('starlette', 'emit_push.server'))])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
