"""EmitPush.handle_push against the in-process emit server: every path a push can take.

Each behaviour is checked for ``async def`` and ``def`` handlers (``kind``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from emit_push import (
    ConfigurationError,
    DeadlineExceeded,
    EmitPush,
    Job,
    JobKilledError,
    SyncJob,
)
from emit_push.server import EmitServer
from tests.framework.conftest import create, event_types, job, logs, push, worker_client

MakeApp = Callable[..., EmitPush]


@pytest.fixture(params=["async", "sync"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Resize(BaseModel):
    url: str
    width: int


@dataclasses.dataclass
class Made:
    key: str
    at: datetime


async def test_a_push_runs_the_job_to_completion(
    make_app: MakeApp, admin: httpx.AsyncClient, kind: str
) -> None:
    app = make_app()
    seen: list[Any] = []
    if kind == "async":

        @app.on_job("resize")
        async def resize(job: Job[Resize]) -> Resize:
            seen.append(job.payload)
            job.log.info("starting", metadata={"attempt": job.attempt_number})
            await job.progress(40, "resizing", sub_progress={"decode": {"percent": 100}})
            await job.checkpoint({"step": 1})
            await job.event({"kind": "note"})
            job.log.info("done")
            return Resize(url=job.payload.url + "?w", width=job.payload.width // 2)
    else:

        @app.on_job("resize")
        def resize_sync(job: SyncJob[Resize]) -> Resize:
            seen.append(job.payload)
            job.log.info("starting", metadata={"attempt": job.attempt_number})
            job.progress(40, "resizing", sub_progress={"decode": {"percent": 100}})
            job.checkpoint({"step": 1})
            job.event({"kind": "note"})
            job.log.info("done")
            return Resize(url=job.payload.url + "?w", width=job.payload.width // 2)

    job_id = await create(admin, "resize", {"url": "s3://a", "width": 640})
    result = await push(app, job_id, "resize")
    assert result.body() == {
        "status": "completed",
        "jobId": job_id,
        "name": "resize",
        "attemptNumber": 0,
    }
    assert result.http()[0] == 200
    assert seen == [Resize(url="s3://a", width=640)]  # typed, validated once
    document = await job(admin, job_id)
    assert document["status"] == "completed"
    assert document["result"] == {"url": "s3://a?w", "width": 320}
    assert document["progress"]["subProgress"] == {"decode": {"percent": 100}}
    assert document["checkpoint"] == {"step": 1}
    assert event_types(document) == [
        "created", "delivered", "running", "progress", "checkpoint", "event", "completed",
    ]  # fmt: skip
    assert await logs(admin, job_id) == ["starting", "done"]  # there when the answer is


async def test_twenty_concurrent_pushes_run_a_job_once(
    make_app: MakeApp, admin: httpx.AsyncClient, kind: str
) -> None:
    app = make_app()
    runs: list[str] = []
    if kind == "async":

        @app.on_job("once")
        async def once(job: Job) -> None:
            runs.append(job.id)
            await asyncio.sleep(0.05)
    else:

        @app.on_job("once")
        def once_sync(job: SyncJob) -> None:
            runs.append(job.id)
            time.sleep(0.05)

    job_id = await create(admin, "once")
    results = await asyncio.gather(*(push(app, job_id, "once") for _ in range(20)))
    statuses = sorted(r.status or "" for r in results)
    assert statuses == ["completed"] + ["skipped"] * 19
    assert {r.reason for r in results if r.status == "skipped"} == {"already claimed"}
    assert runs == [job_id]


async def test_an_exception_fails_the_job_and_the_retry_succeeds(
    make_app: MakeApp, admin: httpx.AsyncClient, kind: str
) -> None:
    errors: list[tuple[BaseException, Any]] = []
    app = make_app(on_error=lambda exc, job: errors.append((exc, job)))

    def work(attempt: int) -> dict[str, int]:
        if attempt == 0:
            raise ValueError("flaky upstream")
        return {"attempt": attempt}

    if kind == "async":

        @app.on_job("flaky")
        async def flaky(job: Job) -> dict[str, int]:
            job.log.warn(f"attempt {job.attempt_number}")
            return work(job.attempt_number)
    else:

        @app.on_job("flaky")
        def flaky_sync(job: SyncJob) -> dict[str, int]:
            job.log.warn(f"attempt {job.attempt_number}")
            return work(job.attempt_number)

    job_id = await create(admin, "flaky", maxRetries=2)
    first = await push(app, job_id, "flaky")
    assert (first.status, first.error) == ("failed", "ValueError: flaky upstream")
    document = await job(admin, job_id)
    assert (document["status"], document["attemptNumber"]) == ("pending", 1)
    assert [(type(e).__name__, j.id) for e, j in errors] == [("ValueError", job_id)]
    second = await push(app, job_id, "flaky")
    assert (second.status, second.attempt_number) == ("completed", 1)
    assert (await job(admin, job_id))["result"] == {"attempt": 1}
    lines = await logs(admin, job_id)
    assert lines[0] == "attempt 0"
    assert lines[1].startswith("Traceback")
    assert lines[1].endswith("ValueError: flaky upstream")
    assert lines[2:] == ["attempt 1"]


async def test_a_kill_stops_the_function_and_nothing_more_is_sent(
    make_app: MakeApp, admin: httpx.AsyncClient, kind: str
) -> None:
    app = make_app(keepalive_interval=0.05)
    started = asyncio.Event()
    loop = asyncio.get_running_loop()
    stopped_by: list[BaseException] = []
    noticed = asyncio.Event()
    if kind == "async":

        @app.on_job("long")
        async def long(job: Job) -> None:
            job.log.info("working")
            started.set()
            try:
                await asyncio.Event().wait()  # forever, until cancelled
            except asyncio.CancelledError as exc:
                stopped_by.append(exc)
                noticed.set()
                raise
    else:

        @app.on_job("long")
        def long_sync(job: SyncJob) -> None:
            job.log.info("working")
            loop.call_soon_threadsafe(started.set)
            try:
                while True:  # a sync function learns of the kill at its next call
                    job.progress(10, "still going")
                    time.sleep(0.02)
            except JobKilledError as exc:
                stopped_by.append(exc)
                loop.call_soon_threadsafe(noticed.set)
                raise

    job_id = await create(admin, "long")
    running = asyncio.create_task(push(app, job_id, "long"))
    await started.wait()
    assert (
        await admin.post(f"/jobs/{job_id}/kill", json={"reason": "no longer needed"})
    ).is_success
    result = await running
    assert result.status == "killed"
    # A thread cannot be cancelled: the answer does not wait for it, and the function
    # learns of the kill at its next job call.
    await asyncio.wait_for(noticed.wait(), 5)
    assert len(stopped_by) == 1
    document = await job(admin, job_id)
    assert document["status"] == "killed"
    assert "completed" not in event_types(document)
    assert event_types(document)[-1] == "killed"  # no fail, no complete after the kill
    assert await logs(admin, job_id) == ["working"]


async def test_the_deadline_stops_the_function_and_fails_the_job_for_a_retry(
    make_app: MakeApp, admin: httpx.AsyncClient, kind: str
) -> None:
    app = make_app(deadline_margin=0.5)
    release = threading.Event()
    later: list[BaseException] = []
    noticed = asyncio.Event()
    loop = asyncio.get_running_loop()
    if kind == "async":

        @app.on_job("slow")
        async def slow(job: Job) -> None:
            job.log.info(f"remaining {job.remaining():.1f}")
            await asyncio.sleep(30)
    else:

        @app.on_job("slow")
        def slow_sync(job: SyncJob) -> None:
            job.log.info(f"remaining {job.remaining():.1f}")
            release.wait(30)  # a thread cannot be cancelled; it is abandoned
            try:
                job.progress(1, "too late")
            except DeadlineExceeded as exc:
                later.append(exc)
                loop.call_soon_threadsafe(noticed.set)

    job_id = await create(admin, "slow", maxRetries=1)
    started = time.monotonic()
    result = await push(app, job_id, "slow", remaining_time=1.0)
    elapsed = time.monotonic() - started
    assert (result.status, result.error, result.reason) == (
        "failed",
        "deadline exceeded",
        "deadline exceeded",
    )
    assert 0.4 < elapsed < 1.0  # stopped half a second before the platform's limit
    document = await job(admin, job_id)
    assert (document["status"], document["attemptNumber"]) == ("pending", 1)  # retries now
    assert await logs(admin, job_id) == ["remaining 1.0"]
    if kind == "sync":
        release.set()
        await asyncio.wait_for(noticed.wait(), 5)
        assert isinstance(later[0], DeadlineExceeded)


async def test_job_deadline_and_remaining(
    make_app: MakeApp, admin: httpx.AsyncClient, kind: str
) -> None:
    app = make_app(max_runtime=60)
    seen: list[tuple[datetime | None, float | None]] = []
    if kind == "async":

        @app.on_job("t")
        async def t(job: Job) -> None:
            seen.append((job.deadline, job.remaining()))
    else:

        @app.on_job("t")
        def t_sync(job: SyncJob) -> None:
            seen.append((job.deadline, job.remaining()))

    await push(app, await create(admin, "t"), "t", remaining_time=30)
    await push(app, await create(admin, "t"), "t")
    (deadline, remaining), (_, without_platform) = seen
    assert deadline is not None
    assert remaining is not None
    assert 29 < remaining <= 30  # the platform's 30 s beat max_runtime's 60
    assert abs((deadline - datetime.now(UTC)).total_seconds() - remaining) < 1
    assert without_platform is not None
    assert 59 < without_platform <= 60


async def test_an_invalid_payload_fails_the_job_without_running_it(
    make_app: MakeApp, admin: httpx.AsyncClient, kind: str
) -> None:
    app = make_app()
    calls: list[Any] = []
    if kind == "async":

        @app.on_job("resize")
        async def resize(job: Job[Resize]) -> None:
            calls.append(job)
    else:

        @app.on_job("resize")
        def resize_sync(job: SyncJob[Resize]) -> None:
            calls.append(job)

    job_id = await create(admin, "resize", {"url": "x", "width": "wide"}, maxRetries=0)
    result = await push(app, job_id, "resize")
    assert result.status == "failed"
    assert (
        result.error
        == "invalid payload (Resize): width: Input should be a valid integer, unable to parse string as an integer"
    )
    assert calls == []
    assert (await job(admin, job_id))["status"] == "dead"


async def test_unknown_names_are_ignored_without_a_claim(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()

    @app.on_job("email")
    async def email(job: Job) -> None:
        raise AssertionError("not called")

    job_id = await create(admin, "sms")
    result = await push(app, job_id, "sms")
    assert (result.status, result.reason) == ("ignored", "no handler for 'sms' here")
    assert (await job(admin, job_id))["status"] == "pending"


async def test_unknown_jobs_are_skipped(make_app: MakeApp) -> None:
    app = make_app()

    @app.on_job("email")
    async def email(job: Job) -> None:
        raise AssertionError("not called")

    result = await push(app, "01JNOSUCHJOB", "email")
    assert (result.status, result.reason, result.http_status) == ("skipped", "no such job", 200)


async def test_a_push_without_a_name_uses_the_claimed_jobs_name(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()

    @app.on_job("email")
    async def email(job: Job) -> str:
        return "sent"

    done = await push(app, await create(admin, "email"))
    assert (done.status, done.name) == ("completed", "email")
    orphan = await create(admin, "sms", maxRetries=0)
    result = await push(app, orphan)
    assert (result.status, result.error) == ("failed", "no handler for job 'sms' at this endpoint")
    assert (await job(admin, orphan))["status"] == "dead"


async def test_a_wildcard_handler_takes_the_rest(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()

    @app.on_job("email")
    async def email(job: Job) -> str:
        return "email"

    @app.on_job("*")
    async def anything(job: Job) -> str:
        return f"any:{job.name}"

    for name in ("email", "sms"):
        job_id = await create(admin, name)
        assert (await push(app, job_id, name)).status == "completed"
        assert (await job(admin, job_id))["result"] == ("email" if name == "email" else "any:sms")


async def test_service_unreachable_is_503(emit: EmitServer) -> None:
    dead = worker_client(
        emit,
        transport=httpx.AsyncHTTPTransport(),
        base_url="http://127.0.0.1:9/api/v1",
        max_retries=0,
    )
    app = EmitPush(client=dead, push_secret=None)

    @app.on_job("email")
    async def email(job: Job) -> None:
        raise AssertionError("not called")

    result = await push(app, "01JSOMEJOB", "email")
    status, _, content = result.http()
    assert (status, result.code) == (503, "service_unavailable")
    assert b"could not be reached" in content
    await dead.aclose()


async def test_results_are_serialised(make_app: MakeApp, admin: httpx.AsyncClient) -> None:
    app = make_app()
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    @app.on_job("made")
    async def made(job: Job) -> Made:
        return Made("k", moment)

    @app.on_job("odd")
    async def odd(job: Job) -> object:
        return object()

    job_id = await create(admin, "made")
    assert (await push(app, job_id, "made")).status == "completed"
    assert (await job(admin, job_id))["result"] == {"key": "k", "at": "2026-01-02T03:04:05Z"}
    bad = await create(admin, "odd", maxRetries=0)
    result = await push(app, bad, "odd")
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.startswith("the result is not JSON")


async def test_a_handler_may_settle_the_job_itself(
    make_app: MakeApp, admin: httpx.AsyncClient, kind: str
) -> None:
    app = make_app(auto_ack=False)
    if kind == "async":

        @app.on_job("manual")
        async def manual(job: Job) -> str:
            await job.ack()
            await job.complete({"by": "handler"})
            return "ignored"
    else:

        @app.on_job("manual")
        def manual_sync(job: SyncJob) -> str:
            job.ack()
            job.complete({"by": "handler"})
            return "ignored"

    job_id = await create(admin, "manual")
    assert (await push(app, job_id, "manual")).status == "completed"
    document = await job(admin, job_id)
    assert document["result"] == {"by": "handler"}
    assert event_types(document).count("completed") == 1


async def test_auto_complete_off_leaves_the_job_running(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()

    @app.on_job("later", auto_complete=False)
    async def later(job: Job) -> str:
        return "not sent"

    job_id = await create(admin, "later")
    assert (await push(app, job_id, "later")).status == "running"  # what the job is
    assert (await job(admin, job_id))["status"] == "running"


async def test_stop_on_error_reraises_after_failing(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app(stop_on_error=True)

    @app.on_job("boom")
    async def boom(job: Job) -> None:
        job.log.error("about to fail")
        raise RuntimeError("boom")

    job_id = await create(admin, "boom")
    with pytest.raises(RuntimeError, match="boom"):
        await push(app, job_id, "boom")
    assert (await job(admin, job_id))["attemptNumber"] == 1
    lines = await logs(admin, job_id)
    assert lines[0] == "about to fail"
    assert lines[1].endswith("RuntimeError: boom")
    assert len(lines) == 2


async def test_middleware_wraps_every_run_in_order(
    make_app: MakeApp, admin: httpx.AsyncClient, kind: str
) -> None:
    app = make_app()
    trace: list[str] = []

    @app.middleware
    async def outer(job: Job, call_next: Callable[[], Any]) -> Any:
        trace.append(f"outer>{job.name}")
        try:
            return await call_next()
        finally:
            trace.append("outer<")

    @app.middleware
    async def inner(job: Job, call_next: Callable[[], Any]) -> Any:
        trace.append("inner>")
        result = await call_next()
        trace.append(f"inner<{result}")
        return {"wrapped": result}

    if kind == "async":

        @app.on_job("m")
        async def m(job: Job) -> int:
            trace.append("handler")
            return 7
    else:

        @app.on_job("m")
        def m_sync(job: SyncJob) -> int:
            trace.append("handler")
            return 7

    job_id = await create(admin, "m")
    assert (await push(app, job_id, "m")).status == "completed"
    assert trace == ["outer>m", "inner>", "handler", "inner<7", "outer<"]
    assert (await job(admin, job_id))["result"] == {"wrapped": 7}


@pytest.mark.slow
async def test_keepalives_carry_a_job_past_its_timeout(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()

    @app.on_job("patient")
    async def patient(job: Job) -> str:
        await asyncio.sleep(2.2)  # more than twice the job's 1 s inactivity window
        return "done"

    job_id = await create(admin, "patient", timeoutSeconds=1)
    assert (await push(app, job_id, "patient")).status == "completed"
    assert (await job(admin, job_id))["attemptNumber"] == 0


async def test_without_keepalives_the_job_timeout_is_the_deadline(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app(keepalive_interval=None, deadline_margin=0.3)

    @app.on_job("quiet")
    async def quiet(job: Job) -> None:
        await asyncio.sleep(5)

    job_id = await create(admin, "quiet", timeoutSeconds=1)
    result = await push(app, job_id, "quiet")
    assert (result.status, result.reason) == ("failed", "deadline exceeded")


def test_registration_errors() -> None:
    app = EmitPush(space_id="s", api_key="k", push_secret=None)

    @app.on_job("a")
    async def a(job: Job) -> None: ...

    with pytest.raises(ConfigurationError, match="already has a handler"):
        app.on_job("a")(a)
    with pytest.raises(ConfigurationError, match="receives Job, not SyncJob"):

        @app.on_job("b")
        async def b(job: SyncJob) -> None: ...

    with pytest.raises(ConfigurationError, match="receives SyncJob, not Job"):

        @app.on_job("c")
        def c(job: Job) -> None: ...

    with pytest.raises(ConfigurationError, match="keepalive_interval"):
        app.on_job("d", keepalive_interval=-1)
    with pytest.raises(ConfigurationError, match="needs a job name"):
        app.on_job("")(a)


# -- missing settings: named at first use, warned about at start -----------------------

NEITHER = "EmitPush needs space_id= (or EMIT_SPACE_ID) and api_key= (or EMIT_API_KEY)"


@pytest.fixture
def no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EMIT_SPACE_ID", "EMIT_API_KEY", "EMIT_BASE_URL", "EMIT_PUSH_SECRET"):
        monkeypatch.delenv(name, raising=False)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("emit_push") and r.levelname == "WARNING"
    ]


@pytest.mark.usefixtures("no_settings")
async def test_without_settings_the_adapter_is_built_and_a_push_is_answered_500_naming_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = EmitPush(push_secret="s")
    app.on_job("resize")(lambda job: None)
    asgi = app.asgi()  # no error: a warning, once
    assert _warnings(caplog) == [
        f"emit-push: {NEITHER}: until then each push is answered 500 (not_configured),"
        " and each poll or API call raises ConfigurationError"
    ]
    transport = httpx.ASGITransport(app=asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as web:
        body = {"jobId": "job_1", "name": "resize"}
        answer = await web.post("/", json=body, headers={"authorization": "Bearer s"})
        refused = await web.post("/", json=body, headers={"authorization": "Bearer nope"})
    assert (answer.status_code, answer.json()) == (
        500,
        {"error": NEITHER, "code": "not_configured"},
    )
    assert refused.status_code == 401  # the secret first: a stranger learns nothing more
    result = await app.handle_push(b'{"jobId": "job_1"}', {"Authorization": "Bearer s"})
    assert (result.http_status, result.code, result.error) == (500, "not_configured", NEITHER)
    refusals = [line for line in _warnings(caplog) if "push refused (500" in line]
    assert refusals == [f"emit-push: push refused (500 not_configured): {NEITHER}"]  # once


@pytest.mark.usefixtures("no_settings")
async def test_without_settings_a_poll_a_sweep_or_an_api_call_raises_naming_them() -> None:
    app = EmitPush(api_key="emit_key", push_secret=None)
    app.on_job("resize")(lambda job: None)
    missing = r"^EmitPush needs space_id= \(or EMIT_SPACE_ID\)$"
    with pytest.raises(ConfigurationError, match=missing):
        app.client()
    with pytest.raises(ConfigurationError, match=missing):
        await app.run_polling(count=1)
    with pytest.raises(ConfigurationError, match=missing):
        await app.sweep()
    await app.aclose()


@pytest.mark.usefixtures("no_settings")
async def test_settings_set_after_the_app_was_built_are_read_at_first_use(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app = EmitPush(push_secret="s")
    app.asgi()
    monkeypatch.setenv("EMIT_SPACE_ID", "01JLATESPACE00000000000000")  # a test's fixture, say
    monkeypatch.setenv("EMIT_API_KEY", "emit_late")
    assert app.client().space_id == "01JLATESPACE00000000000000"
    assert app.runner.space_id == "01JLATESPACE00000000000000"  # spaceId of a push checked
    assert len(_warnings(caplog)) == 1
    await app.aclose()


@pytest.mark.usefixtures("no_settings")
async def test_without_settings_every_adapter_is_built_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Async: lambda_handler then takes the running loop, rather than making one to leave.
    from emit_push.adapters.aws_lambda import lambda_handler
    from emit_push.adapters.gcp_functions import http_function

    for build in (lambda app: app.asgi(), lambda_handler, http_function):
        caplog.clear()
        app = EmitPush(push_secret="s")
        assert callable(build(app))
        assert [NEITHER in line for line in _warnings(caplog)] == [True], build


@pytest.mark.usefixtures("no_settings")
def test_a_malformed_setting_still_fails_when_the_adapter_is_built() -> None:
    app = EmitPush(base_url="https://emit.run:port/api", push_secret="s")  # and no key
    with pytest.raises(ConfigurationError, match="base_url"):
        app.asgi()
    with pytest.raises(ConfigurationError, match="api_key must be a string"):
        EmitPush(api_key=42, push_secret="s").asgi()  # type: ignore[arg-type]


def test_an_app_module_imports_and_serves_without_any_setting(tmp_path: Path) -> None:
    (tmp_path / "images.py").write_text(
        "from emit_push import EmitPush, Job\n"
        "from emit_push.adapters.aws_lambda import lambda_handler\n"
        "from emit_push.adapters.gcp_functions import http_function\n"
        "app = EmitPush()\n"
        "@app.on_job('resize')\n"
        "async def resize(job: Job) -> None: ...\n"
        "asgi, handler, gcf = app.asgi(), lambda_handler(app), http_function(app)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMIT_")}
    result = subprocess.run(
        [sys.executable, "-c", "import images; print(sorted(images.app.handlers))"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (0, "['resize']\n"), result.stderr
    assert f"emit-push: {NEITHER}" in result.stderr  # warned (logging's last resort)
