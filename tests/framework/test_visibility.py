"""Failures you can see (issue 11): a raising handler's traceback in the process's log and
in the job's logs; stdlib logging into the job's logs; job.log lines out to logging."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx
import pytest

from emit_push import EmitPush, Job, LoggerOptions, SyncJob, current_job
from tests.conftest import LiveServer
from tests.framework.conftest import create, job, push

MakeApp = Callable[..., EmitPush]


async def entries(admin: httpx.AsyncClient, job_id: str) -> list[dict[str, object]]:
    page = (await admin.get(f"/jobs/{job_id}/logs", params={"limit": 1000})).json()
    return list(page["logs"])


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_raising_handler_is_told_everywhere(
    make_app: MakeApp, admin: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    app = make_app()

    def fire() -> None:
        raise RuntimeError("database is on fire")

    if kind == "async":

        @app.on_job("burn")
        async def burn(job: Job) -> None:
            fire()

    else:

        @app.on_job("burn")
        def burn_sync(job: SyncJob) -> None:
            fire()

    job_id = await create(admin, "burn", maxRetries=0)
    with caplog.at_level(logging.ERROR, logger="emit_push"):
        result = await push(app, job_id)
    assert result.error == "RuntimeError: database is on fire"  # the fail stays short
    [record] = [r for r in caplog.records if r.name == "emit_push.run"]
    assert record.levelno == logging.ERROR
    assert job_id in record.getMessage()
    assert "burn" in record.getMessage()
    assert record.exc_info is not None
    assert "database is on fire" in caplog.text
    assert "Traceback (most recent call last)" in caplog.text
    assert record.__dict__["emit_job_id"] == job_id
    lines = await entries(admin, job_id)
    [error] = [line for line in lines if line["level"] == "error"]
    assert str(error["message"]).startswith("Traceback (most recent call last)")
    assert "in fire" in str(error["message"])
    # From the reader's own code: emit-push's frames before it (the run, the middleware)
    # are left out of the job's logs (the process's log keeps them all).
    frames = [line for line in str(error["message"]).splitlines() if line.startswith("  File")]
    assert __file__ in frames[0], frames
    assert "emit_push" in caplog.text.partition("Traceback")[2]
    assert str(error["message"]).endswith("RuntimeError: database is on fire")
    assert (await job(admin, job_id))["result"]["error"] == "RuntimeError: database is on fire"


async def test_stdlib_records_land_in_their_own_jobs_logs(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    """Two concurrent runs, one async and one in a thread: each gets its own records."""
    app = make_app()
    library = logging.getLogger("some.library")
    library.setLevel(logging.INFO)
    both = asyncio.Event()
    arrived = 0

    async def meet() -> None:
        nonlocal arrived
        arrived += 1
        if arrived == 2:
            both.set()
        await both.wait()

    @app.on_job("async")
    async def in_task(job: Job) -> None:
        await meet()
        library.info("from the task of %s", job.id)
        assert current_job() is job

    @app.on_job("sync")
    def in_thread(job: SyncJob) -> None:
        asyncio.run_coroutine_threadsafe(meet(), loop).result(5)
        library.warning("from the thread of %s", job.id)
        assert current_job() is job

    loop = asyncio.get_running_loop()
    a, s = await create(admin, "async"), await create(admin, "sync")
    results = await asyncio.gather(push(app, a), push(app, s))
    assert [r.status for r in results] == ["completed", "completed"], results
    assert current_job() is None
    for job_id, level in ((a, "info"), (s, "warn")):
        [line] = [x for x in await entries(admin, job_id) if x.get("source") == "some.library"]
        where = "task" if level == "info" else "thread"
        assert (line["level"], line["message"]) == (level, f"from the {where} of {job_id}")


async def test_job_log_lines_reach_the_emit_push_job_logger(
    make_app: MakeApp, admin: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()

    @app.on_job("talk")
    async def talk(job: Job) -> None:
        job.log.info("resizing", metadata={"width": 640})
        job.log.debug("too fine to echo")

    job_id = await create(admin, "talk")
    with caplog.at_level(logging.DEBUG, logger="emit_push.job"):
        await push(app, job_id)
    [record] = [r for r in caplog.records if r.name == "emit_push.job"]
    assert record.levelno == logging.INFO
    assert record.getMessage() == f"[talk {job_id} #0] resizing"
    assert (record.__dict__["emit_job_id"], record.__dict__["emit_job_attempt"]) == (job_id, 0)
    assert record.__dict__["emit_metadata"] == {"width": 640}
    # Not captured back into the job: one line in its logs, not two.
    assert [x["message"] for x in await entries(admin, job_id)] == ["resizing", "too fine to echo"]


async def test_the_bridge_can_be_turned_off_per_app(
    make_app: MakeApp, admin: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(logger=LoggerOptions(echo_level=None, capture_level=None))
    library = logging.getLogger("some.library")

    @app.on_job("quiet")
    async def quiet(job: Job) -> None:
        job.log.info("only in the job")
        library.warning("only in the process")

    job_id = await create(admin, "quiet")
    with caplog.at_level(logging.INFO):
        await push(app, job_id)
    assert [r.name for r in caplog.records if r.name in ("emit_push.job", "some.library")] == [
        "some.library"
    ]
    assert [x["message"] for x in await entries(admin, job_id)] == ["only in the job"]


async def test_refused_pushes_are_warned_about_once_a_minute(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(push_secret="s3cret-value-for-pushes")
    body = b'{"type": "job.pending", "jobId": "01JX"}'
    with caplog.at_level(logging.WARNING, logger="emit_push.push"):
        for _ in range(50):
            result = await app.handle_push(body, {"authorization": "Bearer not-the-one-4f2a"})
            assert result.http_status == 401
    [record] = [r for r in caplog.records if r.name == "emit_push.push"]
    assert "push refused (401)" in record.getMessage()
    assert "EMIT_PUSH_SECRET" in record.getMessage()  # the fix
    assert "s3cret" not in caplog.text  # neither secret is ever written
    assert "not-the-one" not in caplog.text


def test_notices_say_how_many_they_held_back() -> None:
    from emit_push._framework.notices import Notices

    now = [0.0]
    seen: list[str] = []

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger("tests.notices")
    logger.addHandler(Recorder())
    notices = Notices(every=60, logger=logger, clock=lambda: now[0])
    assert [notices.warn("a", "first %d", n) for n in range(3)] == [True, False, False]
    assert notices.warn("b", "another kind")  # each kind has its own minute
    now[0] = 61
    assert notices.warn("a", "again")
    assert seen == ["first 0", "another kind", "again (2 more like it in the last 60 s not shown)"]


async def test_a_base_url_without_api_v1_is_a_refused_claim_with_the_fix(
    caplog: pytest.LogCaptureFixture, live_server: LiveServer
) -> None:
    from tests.conftest import SPACE, WORKER_KEY

    base = live_server.base_url.removesuffix("/api/v1")
    app = EmitPush(space_id=SPACE, api_key=WORKER_KEY, base_url=base, push_secret=None)
    body = b'{"type": "job.pending", "jobId": "01JNOTHERE"}'
    with caplog.at_level(logging.WARNING, logger="emit_push.push"):
        result = await app.handle_push(body, {})
    await app.aclose()
    assert (result.http_status, result.code) == (500, "no_api_here"), result
    assert "ends in /api/v1" in (result.error or "")
    [record] = [r for r in caplog.records if r.name == "emit_push.push"]
    assert "/api/v1" in record.getMessage()


def test_the_push_record_carries_the_apps_own_reason(live_server: LiveServer) -> None:
    """An app on uvicorn with a base URL without /api/v1 answers the push 500
    ``no_api_here``; the local server's push_failed record gives the app's reason (and
    its fix) instead of "see its log"."""
    from tests.conftest import ADMIN_KEY, SPACE, WORKER_KEY, ServeThread
    from tests.waiting import wait_for

    base = live_server.base_url.removesuffix("/api/v1")
    app = EmitPush(space_id=SPACE, api_key=WORKER_KEY, base_url=base, push_secret=None)
    app.on_job("resize")(lambda job: None)
    endpoint = ServeThread(app.asgi())
    admin = httpx.Client(base_url=live_server.base_url, headers={"x-api-key": ADMIN_KEY})
    try:
        admin.put(f"/spaces/{SPACE}/push", json={"url": f"{endpoint.url}/"}).raise_for_status()
        job_id = admin.post(f"/spaces/{SPACE}/jobs", json={"name": "resize"}).json()["id"]

        def failed() -> dict[str, object] | None:
            events = admin.get(f"/jobs/{job_id}").json()["events"]
            return next((e["data"] for e in events if e["type"] == "push_failed"), None)

        data = wait_for(failed, message="the push recorded as failed")
    finally:
        admin.close()
        endpoint.stop()
    assert (data["statusCode"], data["error"]) == (500, "HTTP 500")
    answer = str(data["answer"])
    assert "ends in /api/v1" in answer, data
    assert data["hint"] == f"the app answered: {answer}"
