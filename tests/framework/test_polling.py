"""The polling worker: the same handlers, pulled; backoff, errors, and graceful stops."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from emit_push import (
    APIConnectionError,
    AsyncEmitClient,
    AuthenticationError,
    EmitClient,
    EmitPush,
    Job,
    PushResult,
    ServerError,
    SyncJob,
)
from emit_push._framework.polling import Backoff
from emit_push.server import EmitServer
from tests.conftest import ADMIN_KEY, SPACE, WORKER_KEY, LiveServer
from tests.framework.conftest import BASE, create, event_types, job, logs, worker_client
from tests.waiting import eventually

MakeApp = Callable[..., EmitPush]


class Order(BaseModel):
    item: str
    quantity: int


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(poll_interval=1.0, max_backoff=5.0)
    delays = [backoff.next() for _ in range(6)]
    for delay, nominal in zip(delays, [1, 2, 4, 5, 5, 5], strict=True):
        assert nominal * 0.8 <= delay <= min(nominal * 1.2, 5.0)
    backoff.reset()
    assert backoff.next() <= 1.2


async def test_polls_runs_every_job_of_its_names_and_stops(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()
    done: list[PushResult] = []
    stop = asyncio.Event()

    @app.on_job("order")
    async def order(job: Job[Order]) -> dict[str, Any]:
        job.log.info(f"packing {job.payload.quantity} {job.payload.item}")
        await job.progress(100, "packed")
        return {"packed": job.payload.item}

    @app.on_job("invoice")
    def invoice(job: SyncJob) -> str:
        return "sent"

    ids = [await create(admin, "order", {"item": f"i{n}", "quantity": n}) for n in range(5)]
    ids.append(await create(admin, "invoice"))
    other = await create(admin, "not-ours")

    def finished(result: PushResult) -> None:
        done.append(result)
        if len(done) == len(ids):
            stop.set()

    await asyncio.wait_for(
        app.run_polling(count=3, poll_interval=0.01, stop=stop, on_done=finished), 10
    )
    assert sorted(r.job_id or "" for r in done) == sorted(ids)
    assert {r.status for r in done} == {"completed"}
    assert (await job(admin, ids[2]))["result"] == {"packed": "i2"}
    assert await logs(admin, ids[3]) == ["packing 3 i3"]
    assert (await job(admin, other))["status"] == "pending"  # strict name filter


async def test_count_jobs_run_at_once(make_app: MakeApp, admin: httpx.AsyncClient) -> None:
    app = make_app()
    stop = asyncio.Event()
    inside = 0
    peak = 0
    together = asyncio.Event()

    @app.on_job("parallel")
    async def parallel(job: Job) -> None:
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        if inside == 4:
            together.set()
        await asyncio.wait_for(together.wait(), 5)
        inside -= 1

    for _ in range(4):
        await create(admin, "parallel")
    done: list[PushResult] = []

    def finished(result: PushResult) -> None:
        done.append(result)
        if len(done) == 4:
            stop.set()

    await asyncio.wait_for(app.run_polling(count=4, stop=stop, on_done=finished), 10)
    assert peak == 4
    assert {r.status for r in done} == {"completed"}


async def test_poll_errors_go_to_on_error_and_back_off(emit: EmitServer) -> None:
    dead = worker_client(
        emit,
        transport=httpx.AsyncHTTPTransport(),
        base_url="http://127.0.0.1:9/api/v1",
        max_retries=0,
    )
    errors: list[tuple[BaseException, Any]] = []
    stop = asyncio.Event()

    def on_error(exc: BaseException, job: Any) -> None:
        errors.append((exc, job))
        if len(errors) == 3:
            stop.set()

    app = EmitPush(client=dead, push_secret=None, on_error=on_error)

    @app.on_job("x")
    async def x(job: Job) -> None: ...

    await asyncio.wait_for(app.run_polling(poll_interval=0.01, stop=stop), 10)
    assert len(errors) == 3
    assert all(isinstance(exc, APIConnectionError) and job is None for exc, job in errors)
    stopping = EmitPush(client=dead, push_secret=None, stop_on_error=True)
    stopping.on_job("x")(x)
    with pytest.raises(APIConnectionError, match="127.0.0.1:9"):
        await asyncio.wait_for(stopping.run_polling(poll_interval=0.01), 10)
    await dead.aclose()


async def test_a_refused_key_ends_polling_with_its_error(emit: EmitServer) -> None:
    errors: list[BaseException] = []
    refused = AsyncEmitClient(
        space_id=SPACE,
        api_key="emit_wrong",
        base_url=BASE,
        transport=httpx.ASGITransport(app=emit.app),
        max_retries=0,
    )
    app = EmitPush(client=refused, push_secret=None, on_error=lambda exc, job: errors.append(exc))
    app.on_job("x")(lambda job: None)
    with pytest.raises(AuthenticationError):  # every next poll would be refused too
        await asyncio.wait_for(app.run_polling(poll_interval=0.01), 10)
    assert errors == []
    await refused.aclose()


async def test_stopping_gives_a_grace_period_then_fails_running_jobs_back(
    make_app: MakeApp, admin: httpx.AsyncClient, kind: str
) -> None:
    app = make_app()
    stop = asyncio.Event()
    started = asyncio.Event()
    loop = asyncio.get_running_loop()
    release = threading.Event()
    if kind == "async":

        @app.on_job("stuck")
        async def stuck(job: Job) -> None:
            job.log.info("started")
            started.set()
            await asyncio.sleep(30)
    else:

        @app.on_job("stuck")
        def stuck_sync(job: SyncJob) -> None:
            job.log.info("started")
            loop.call_soon_threadsafe(started.set)
            release.wait(30)

    @app.on_job("quick")
    async def quick(job: Job) -> str:
        await started.wait()
        return "done"

    unacked = asyncio.Event()

    @app.on_job("unacked", auto_ack=False)
    async def before_its_ack(job: Job) -> None:
        unacked.set()
        await asyncio.sleep(30)  # stopped before it acknowledged the job itself
        await job.ack()

    stuck_id = await create(admin, "stuck", maxRetries=2)
    quick_id = await create(admin, "quick")
    unacked_id = await create(admin, "unacked")
    done: list[PushResult] = []
    worker = asyncio.create_task(
        app.run_polling(count=3, stop=stop, grace_period=0.3, on_done=done.append)
    )
    await started.wait()
    await unacked.wait()
    stop.set()  # the quick job finishes within the grace period, the stuck one does not
    await asyncio.wait_for(worker, 10)
    release.set()
    outcomes = {r.job_id: (r.status, r.reason) for r in done}
    assert outcomes[quick_id] == ("completed", None)
    assert outcomes[stuck_id] == ("failed", "worker stopped")
    stuck_job = await job(admin, stuck_id)
    assert (stuck_job["status"], stuck_job["attemptNumber"]) == ("pending", 1)  # retries now
    assert await logs(admin, stuck_id) == ["started"]
    assert outcomes[unacked_id] == ("failed", "worker stopped")
    for job_id in (stuck_id, quick_id, unacked_id):  # nothing left delivered or running
        assert (await job(admin, job_id))["status"] in {"pending", "completed"}


@pytest.fixture(params=["async", "sync"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_sigterm_stops_the_worker_gracefully(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()
    started = asyncio.Event()

    @app.on_job("slowish")
    async def slowish(job: Job) -> str:
        started.set()
        await asyncio.sleep(0.2)
        return "finished in the grace period"

    job_id = await create(admin, "slowish")
    worker = asyncio.create_task(app.run_polling(grace_period=5))
    await started.wait()
    os.kill(os.getpid(), signal.SIGTERM)  # handled by the worker, not the test process
    await asyncio.wait_for(worker, 10)
    assert (await job(admin, job_id))["status"] == "completed"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers removed again


async def test_client_workers_run_polling_with_the_sdk_defaults(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    client = worker_client(emit)
    stop = asyncio.Event()
    seen: list[str] = []

    async def work(job: Job) -> None:
        seen.append(job.name)
        await job.complete({"by": "hand"})  # auto_complete is off, as in the TypeScript SDK
        stop.set()

    job_id = await create(admin, "email")
    await asyncio.wait_for(
        client.workers.run_polling(on_job=work, types="email", poll_interval=0.01, stop=stop), 10
    )
    assert seen == ["email"]
    document = await job(admin, job_id)
    assert document["result"] == {"by": "hand"}
    assert event_types(document).count("completed") == 1
    await client.aclose()


def test_sync_client_run_polling_with_a_threading_stop(live_server: LiveServer) -> None:
    stop = threading.Event()
    with httpx.Client(base_url=live_server.base_url, headers={"x-api-key": ADMIN_KEY}) as admin:
        job_id = admin.post(
            f"/spaces/{SPACE}/jobs", json={"name": "sum", "payload": [2, 3]}
        ).json()["id"]
        with EmitClient(
            space_id=SPACE, api_key=WORKER_KEY, base_url=live_server.base_url
        ) as client:

            def total(job: SyncJob) -> None:
                job.complete(sum(job.payload))
                stop.set()

            client.workers.run_polling(
                on_job=total, poll_interval=0.01, stop=stop, handle_signals=False
            )
        assert admin.get(f"/jobs/{job_id}").json()["result"] == 5


async def test_stop_on_error_waits_for_the_rest_of_the_round(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app(stop_on_error=True)
    slow_started = asyncio.Event()

    @app.on_job("fails")
    async def fails(job: Job) -> None:
        await slow_started.wait()
        raise RuntimeError("stop the worker")

    @app.on_job("slow")
    async def slow(job: Job) -> str:
        slow_started.set()
        await asyncio.sleep(0.3)
        return "finished"

    fail_id = await create(admin, "fails", maxRetries=1)
    slow_id = await create(admin, "slow")
    with pytest.raises(RuntimeError, match="stop the worker"):
        await asyncio.wait_for(app.run_polling(count=2, poll_interval=0.01), 10)
    assert (await job(admin, slow_id))["status"] == "completed"  # not abandoned mid-run
    assert (await job(admin, fail_id))["status"] == "pending"  # failed, to be retried


class FailingPolls(httpx.AsyncBaseTransport):
    """The in-process server, but the first ``failures`` polls are answered 503."""

    def __init__(self, emit: EmitServer, failures: int) -> None:
        self.inner = httpx.ASGITransport(app=emit.app)
        self.failures = failures

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/jobs/poll") and self.failures > 0:
            self.failures -= 1
            return httpx.Response(503, json={"error": "try again", "code": "unavailable"})
        return await self.inner.handle_async_request(request)


async def test_client_workers_poll_errors_reach_on_error_and_the_loop_goes_on(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    client = worker_client(emit, transport=FailingPolls(emit, failures=3))
    errors: list[tuple[BaseException, Any]] = []
    stop = asyncio.Event()

    async def on_error(exc: BaseException, job: Any) -> None:  # an async one is awaited
        errors.append((exc, job))

    async def work(job: Job) -> None:
        await job.complete({"ok": True})
        stop.set()

    job_id = await create(admin, "email")
    await asyncio.wait_for(
        client.workers.run_polling(
            on_job=work, on_error=on_error, poll_interval=0.01, max_backoff=0.05, stop=stop
        ),
        10,
    )
    assert [(type(exc), job) for exc, job in errors] == [(ServerError, None)] * 3
    assert (await job(admin, job_id))["status"] == "completed"  # it backed off and went on
    await client.aclose()


async def test_client_workers_stop_on_error_ends_the_loop_with_a_poll_error(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    client = worker_client(emit, transport=FailingPolls(emit, failures=1))
    job_id = await create(admin, "email")
    ran: list[str] = []
    with pytest.raises(ServerError, match="try again"):
        await asyncio.wait_for(
            client.workers.run_polling(
                on_job=lambda job: ran.append(job.id), stop_on_error=True, poll_interval=0.01
            ),
            5,
        )
    assert ran == []
    assert (await job(admin, job_id))["status"] == "pending"
    await client.aclose()


async def test_cancelling_the_loop_fails_its_running_job_back_before_it_returns(
    emit: EmitServer, admin: httpx.AsyncClient, kind: str
) -> None:
    """The cancellation returns once the job is failed back, so the client can be closed at
    once; the function, stopped, cannot complete the job afterwards (even one that
    swallows its cancellation)."""
    client = worker_client(emit)
    app = EmitPush(client=client, push_secret=None)
    started = asyncio.Event()
    loop = asyncio.get_running_loop()
    release = threading.Event()
    late: list[BaseException] = []
    if kind == "async":

        @app.on_job("stuck")
        async def stuck(job: Job) -> str:
            started.set()
            with contextlib.suppress(asyncio.CancelledError):  # swallowed: then it
                await asyncio.sleep(30)  # tries to complete the job anyway
            try:
                await job.complete({"late": True})
            except Exception as exc:
                late.append(exc)
            return "late"
    else:

        @app.on_job("stuck")
        def stuck_sync(job: SyncJob) -> str:
            loop.call_soon_threadsafe(started.set)
            release.wait(30)
            try:
                job.complete({"late": True})
            except Exception as exc:
                late.append(exc)
            return "late"

    job_id = await create(admin, "stuck", maxRetries=2)
    worker = asyncio.create_task(app.run_polling(poll_interval=0.01, handle_signals=False))
    await started.wait()
    worker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await worker
    await client.aclose()  # right away: the fail-back must be done by now
    document = await job(admin, job_id)
    assert (document["status"], document["attemptNumber"]) == ("pending", 1)  # retries now
    retried = [e for e in document["events"] if e["type"] == "retried"]
    assert [e["data"]["error"] for e in retried] == ["the worker stopped before the job finished"]
    release.set()
    await eventually(lambda: late, message="the stopped function's late complete")
    assert (await job(admin, job_id))["status"] == "pending"  # the late complete was refused


class HeldPolls(httpx.AsyncBaseTransport):
    """The in-process server, but a poll's answer is held back until ``release`` is set."""

    def __init__(self, emit: EmitServer) -> None:
        self.inner = httpx.ASGITransport(app=emit.app)
        self.answered = asyncio.Event()
        self.release = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/jobs/poll"):
            await response.aread()
            if response.json()["jobs"]:
                self.answered.set()
                await self.release.wait()
        return response


async def test_cancelling_the_loop_mid_poll_gives_the_delivered_jobs_back_unrun(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    transport = HeldPolls(emit)
    client = worker_client(emit, transport=transport)
    app = EmitPush(client=client, push_secret=None)
    ran: list[str] = []
    app.on_job("email")(lambda job: ran.append(job.id))
    job_id = await create(admin, "email", maxRetries=1)
    worker = asyncio.create_task(app.run_polling(poll_interval=0.01, handle_signals=False))
    await transport.answered.wait()  # the server has delivered the job to this loop
    worker.cancel()  # reaches the loop while its poll's answer is held back
    transport.release.set()
    with pytest.raises(asyncio.CancelledError):
        await worker
    await client.aclose()
    document = await job(admin, job_id)
    assert (document["status"], document["attemptNumber"]) == ("pending", 1)  # not delivered
    assert ran == []


async def test_aclose_stops_the_apps_loops_before_closing_even_one_just_cancelled(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    client = worker_client(emit)
    app = EmitPush(client=client, push_secret=None)
    started = asyncio.Event()

    @app.on_job("stuck")
    async def stuck(job: Job) -> None:
        started.set()
        await asyncio.sleep(30)

    other = app.with_client(client).run_polling(types="other", handle_signals=False)
    idle = asyncio.create_task(other)
    stuck_id = await create(admin, "stuck", maxRetries=1)
    worker = asyncio.create_task(app.run_polling(poll_interval=0.01, handle_signals=False))
    await started.wait()
    worker.cancel()  # not awaited: aclose must still let it fail its job back first
    await app.aclose(grace_period=0.1)
    assert worker.cancelled()
    await client.aclose()
    document = await job(admin, stuck_id)
    assert (document["status"], document["attemptNumber"]) == ("pending", 1)
    assert not idle.done()  # another app's loop (with_client): not this app's to stop
    idle.cancel()
    with pytest.raises(asyncio.CancelledError):
        await idle


async def test_aclose_stops_a_running_loop_gracefully(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()
    started = asyncio.Event()

    @app.on_job("slowish")
    async def slowish(job: Job) -> str:
        started.set()
        await asyncio.sleep(0.1)
        return "finished in the grace period"

    job_id = await create(admin, "slowish")
    worker = asyncio.create_task(app.run_polling(handle_signals=False))
    await started.wait()
    await app.aclose(grace_period=5)
    assert worker.done()
    await worker  # returned, not cancelled
    assert (await job(admin, job_id))["status"] == "completed"
