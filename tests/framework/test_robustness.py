"""The hard paths: cancellation, slow claims, refused results, background runs at
shutdown, sync callbacks, threads, annotations, warnings."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from emit_push import ConfigurationError, EmitPush, Job, SyncJob
from emit_push.server import EmitServer
from tests.framework.conftest import create, job, push, worker_client
from tests.waiting import eventually

MakeApp = Callable[..., EmitPush]


async def test_a_sync_on_error_may_use_the_sync_job(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    """It runs in a thread: a SyncJob call there must not wait on the loop it blocks."""

    def on_error(exc: BaseException, job: SyncJob) -> None:
        job.progress(99, f"cleaning up after {type(exc).__name__}")

    app = make_app(on_error=on_error)

    @app.on_job("fails")
    def fails(job: SyncJob) -> None:
        raise ValueError("no")

    job_id = await create(admin, "fails")
    result = await asyncio.wait_for(push(app, job_id, "fails"), 10)
    assert (result.status, result.error) == ("failed", "ValueError: no")
    progress = (await job(admin, job_id))["progress"]
    assert progress["message"] == "cleaning up after ValueError"


async def test_a_sync_job_called_on_its_event_loop_raises_instead_of_deadlocking(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()
    raised: list[str] = []

    @app.on_job("t")
    async def t(job: Job) -> None:
        view = SyncJob(job, asyncio.get_running_loop())
        try:
            view.progress(1, "from the loop's own thread")
        except RuntimeError as exc:
            raised.append(str(exc))

    await asyncio.wait_for(push(app, await create(admin, "t"), "t"), 10)
    assert len(raised) == 1
    assert "use the async Job" in raised[0]


async def test_def_handlers_run_on_daemon_threads(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    """An abandoned function (deadline, stopped worker) must not keep the process alive."""
    app = make_app()
    daemon: list[bool] = []

    @app.on_job("t")
    def t(job: SyncJob) -> None:
        daemon.append(threading.current_thread().daemon)

    await push(app, await create(admin, "t"), "t")
    assert daemon == [True]


async def test_a_cancelled_run_fails_the_job_back(
    make_app: MakeApp, admin: httpx.AsyncClient, kind: str
) -> None:
    """A server shutting down cancels its requests: the job is not left running."""
    app = make_app()
    started = asyncio.Event()
    loop = asyncio.get_running_loop()
    release = threading.Event()
    if kind == "async":

        @app.on_job("long")
        async def long(job: Job) -> None:
            started.set()
            await asyncio.sleep(30)
    else:

        @app.on_job("long")
        def long_sync(job: SyncJob) -> None:
            loop.call_soon_threadsafe(started.set)
            release.wait(30)

    job_id = await create(admin, "long", maxRetries=2)
    running = asyncio.create_task(push(app, job_id, "long"))
    await started.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    release.set()
    document = await job(admin, job_id)
    assert (document["status"], document["attemptNumber"]) == ("pending", 1)
    retried = [e for e in document["events"] if e["type"] == "retried"]
    assert retried[-1]["data"]["error"] == "the worker stopped before the job finished"


@pytest.fixture(params=["async", "sync"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.slow
async def test_the_deadline_counts_from_the_push_not_from_the_claim(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    class SlowClaims(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.ASGITransport(app=emit.app)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/claim"):
                await asyncio.sleep(1.0)  # a slow claim: the platform's clock is running
            return await self.inner.handle_async_request(request)

    client = worker_client(emit, transport=SlowClaims())
    app = EmitPush(client=client, push_secret=None, deadline_margin=0.5)

    @app.on_job("slow")
    async def slow(job: Job) -> None:
        await asyncio.sleep(30)

    job_id = await create(admin, "slow", maxRetries=1)
    arrived = time.monotonic()
    result = await push(app, job_id, "slow", remaining_time=2.5)
    answered = time.monotonic() - arrived
    assert (result.status, result.reason) == ("failed", "deadline exceeded")
    assert answered < 2.5  # within the platform's time, counted from the arrival
    await client.aclose()


@pytest.fixture
def server_config() -> Any:
    from tests.conftest import make_config

    return make_config(max_request_bytes=64 * 1024)


async def test_a_result_the_service_refuses_fails_the_job_with_why(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()

    @app.on_job("big")
    async def big(job: Job) -> str:
        return "x" * 100_000  # over the (test) server's 64 KiB request limit

    job_id = await create(admin, "big", maxRetries=0)
    result = await push(app, job_id, "big")
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.startswith("the service refused the result:")
    assert (await job(admin, job_id))["status"] == "dead"  # not left running


async def test_background_runs_answer_202_and_finish_or_fail_back_at_shutdown(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()
    started = asyncio.Event()

    @app.on_job("quick")
    async def quick(job: Job) -> str:
        return "done"

    @app.on_job("stuck")
    async def stuck(job: Job) -> None:
        started.set()
        await asyncio.sleep(30)

    asgi = app.asgi(background=True)
    quick_id = await create(admin, "quick")
    stuck_id = await create(admin, "stuck", maxRetries=1)
    transport = httpx.ASGITransport(app=asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as web:
        for job_id, name in ((quick_id, "quick"), (stuck_id, "stuck")):
            answer = await web.post("/", content=json.dumps({"jobId": job_id, "name": name}))
            assert answer.status_code == 202
            assert answer.json() == {"status": "accepted", "jobId": job_id, "name": name}
    await started.wait()
    await app.aclose(grace_period=0.2)  # what a server's shutdown does
    assert (await job(admin, quick_id))["status"] == "completed"
    stuck_job = await job(admin, stuck_id)
    assert (stuck_job["status"], stuck_job["attemptNumber"]) == ("pending", 1)


def test_an_annotation_that_cannot_be_resolved_is_an_error() -> None:
    app = EmitPush(space_id="s", api_key="k", push_secret=None)

    class Local(BaseModel):  # not at module level: not resolvable from the string annotation
        x: int

    async def handler(job: Job[Local]) -> None: ...

    with pytest.raises(ConfigurationError, match="cannot resolve the annotation"):
        app.on_job("t")(handler)
    app.on_job("t", payload=Local)(handler)  # the way out the message names

    class Plain:  # neither a model nor a type pydantic knows
        pass

    with pytest.raises(ConfigurationError, match="payloads cannot be validated as Plain"):
        app.on_job("u", payload=Plain)(handler)


def test_a_bare_job_annotation_needs_no_resolving() -> None:
    """A handler written in a function that imports ``Job`` itself: nothing to validate."""
    app = EmitPush(space_id="s", api_key="k", push_secret=None)
    source = (
        "from __future__ import annotations\n"
        "async def bench(job: Job) -> None: ...\n"
        "def sync_bench(job: emit_push.SyncJob) -> None: ...\n"
        "async def wrong(job: SyncJob) -> None: ...\n"
    )
    namespace: dict[str, Any] = {}  # neither Job nor SyncJob in its globals
    exec(source, namespace)
    app.on_job("a")(namespace["bench"])
    app.on_job("b")(namespace["sync_bench"])
    assert [app.handlers[n].payload for n in ("a", "b")] == [None, None]
    with pytest.raises(ConfigurationError, match="receives Job, not SyncJob"):
        app.on_job("c")(namespace["wrong"])  # still read for what it says


async def test_the_no_secret_warning_is_given_once_per_app_and_only_for_push_endpoints(
    emit: EmitServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = worker_client(emit)
    with caplog.at_level(logging.WARNING, logger="emit_push"):
        for _ in range(3):
            await client.workers.handle_push({"jobId": "01JNOSUCH"}, on_job=lambda job: None)
        app = EmitPush(client=client, push_secret=None)
        app.asgi()
        app.asgi()
        direct = EmitPush(client=client, push_secret=None)  # no adapter: handle_push itself
        for _ in range(2):
            await direct.handle_push(b'{"jobId": "01JNOSUCH"}', {})
    warnings = [r for r in caplog.records if "no push secret" in r.getMessage()]
    assert len(warnings) == 2  # one for each app with a push endpoint
    await client.aclose()


async def test_health_answers_without_naming_the_jobs(make_app: MakeApp) -> None:
    app = make_app()
    app.on_job("secret-project")(lambda job: None)
    transport = httpx.ASGITransport(app=app.asgi())
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as web:
        assert (await web.get("/health")).json() == {"status": "ok"}


async def test_a_run_never_acknowledges_or_fails_another_workers_delivery(
    make_app: Callable[..., EmitPush], admin: httpx.AsyncClient
) -> None:
    """auto_ack off, and the function fails only after its delivery timed out and another
    worker claimed the job: that delivery is theirs, and stays so."""
    app = make_app(auto_ack=False)
    theirs: list[int] = []

    @app.on_job("slow")
    async def slow(job: Job) -> None:
        async def handed_back() -> bool:  # the service's delivery timeout (1 s)
            return bool((await admin.get(f"/jobs/{job.id}")).json()["status"] == "pending")

        await eventually(handed_back, message="the delivery timed out")
        claimed = await admin.post(f"/jobs/{job.id}/claim")
        theirs.append(claimed.status_code)
        raise RuntimeError("too late")

    job_id = await create(admin, "slow", timeoutSeconds=1, maxRetries=3)
    result = await asyncio.wait_for(push(app, job_id, "slow"), 10)
    assert theirs == [200]
    assert result.status == "failed"
    assert result.reason is not None
    assert result.reason.startswith("could not fail the job")
    document = await job(admin, job_id)
    assert (document["status"], document["attemptNumber"]) == ("delivered", 0)  # theirs
    assert [e["type"] for e in document["events"]][-2:] == ["pending", "delivered"]
