"""The sweep: pending jobs whose push never came, run as a push would run them, once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from emit_push import ConfigurationError, EmitPush, Job, PushResult, ServerError
from emit_push.server import EmitServer
from tests.conftest import ADMIN_KEY, SPACE, WORKER_KEY, LiveServer, ServeThread
from tests.framework.conftest import create, event_types, job, push, worker_client
from tests.framework.test_polling import FailingPolls
from tests.waiting import eventually, wait_for

MakeApp = Callable[..., EmitPush]


async def test_a_pending_job_whose_push_never_came_runs_once_and_completes(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()
    runs: Counter[str] = Counter()

    @app.on_job("invoice")
    async def invoice(job: Job) -> dict[str, Any]:
        runs[job.id] += 1
        job.log.info("billing")
        return {"billed": job.payload["amount"]}

    job_id = await create(admin, "invoice", {"amount": 12})  # no push is configured
    other = await create(admin, "not-ours")
    [result] = await app.sweep()
    assert result == PushResult("completed", job_id, name="invoice", attempt_number=0)
    document = await job(admin, job_id)
    assert (document["status"], document["result"]) == ("completed", {"billed": 12})
    assert event_types(document).count("running") == 1
    assert await app.sweep() == []  # nothing left: a second pass runs nothing
    assert runs == {job_id: 1}
    assert (await job(admin, other))["status"] == "pending"  # only the app's job names


async def test_a_sweep_and_a_push_for_the_same_job_run_it_once(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()
    runs: Counter[str] = Counter()

    @app.on_job("race")
    async def race(job: Job) -> None:
        runs[job.id] += 1
        await asyncio.sleep(0)

    for _ in range(10):
        job_id = await create(admin, "race")
        swept, pushed = await asyncio.gather(app.sweep(max_jobs=1), push(app, job_id, "race"))
        statuses = sorted([*(r.status for r in swept), pushed.status], key=str)
        assert statuses in (["completed"], ["completed", "skipped"]), (swept, pushed)
        assert (await job(admin, job_id))["status"] == "completed"
    assert set(runs.values()) == {1}  # the claim decided, every time
    assert len(runs) == 10


async def test_a_push_that_arrives_while_the_sweep_runs_its_job_is_skipped(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()
    late_pushes: list[PushResult] = []

    @app.on_job("slow-push")
    async def slow_push(job: Job) -> str:
        late_pushes.append(await push(app, job.id, "slow-push"))  # the push, late
        return "ran once"

    job_id = await create(admin, "slow-push")
    [swept] = await app.sweep()
    assert (swept.status, swept.job_id) == ("completed", job_id)
    assert [(r.status, r.job_id) for r in late_pushes] == [("skipped", job_id)]


async def test_a_pass_is_bounded_by_max_jobs_and_by_the_time_left(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()
    app.on_job("batch")(lambda job: "done")
    ids = [await create(admin, "batch") for _ in range(3)]
    assert await app.sweep(remaining_time=1.0) == []  # too little time to claim a job
    assert [r.job_id for r in await app.sweep(max_jobs=2)] == ids[:2]  # oldest first
    assert (await job(admin, ids[2]))["status"] == "pending"
    with pytest.raises(ValueError, match="max_jobs"):
        await app.sweep(max_jobs=0)


async def test_a_failed_poll_ends_the_pass_and_goes_to_on_error(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    client = worker_client(emit, transport=FailingPolls(emit, failures=2))
    errors: list[tuple[BaseException, Any]] = []
    app = EmitPush(client=client, push_secret=None, on_error=lambda e, j: errors.append((e, j)))
    app.on_job("x")(lambda job: None)
    job_id = await create(admin, "x")
    assert await app.sweep() == []
    assert [(type(exc), job) for exc, job in errors] == [(ServerError, None)]
    stopping = EmitPush(client=client, push_secret=None, stop_on_error=True)
    stopping.on_job("x")(lambda job: None)
    with pytest.raises(ServerError):
        await stopping.sweep()
    assert [r.job_id for r in await app.sweep()] == [job_id]  # the API is back
    await client.aclose()


async def test_the_lifespan_sweeps_every_sweep_every_seconds(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    client = worker_client(emit)
    app = EmitPush(client=client, push_secret=None, sweep_every=0.05)
    app.on_job("late")(lambda job: "done")
    asgi = app.asgi()
    async with asgi.router.lifespan_context(asgi):  # as uvicorn runs it
        job_id = await create(admin, "late")  # taken by the next pass, 0.05 s on at most
        await eventually(lambda: _completed(admin, job_id), message="the job swept")
    await client.aclose()


def test_an_app_under_uvicorn_sweeps_in_its_lifespan(live_server: LiveServer) -> None:
    app = EmitPush(
        space_id=SPACE,
        api_key=WORKER_KEY,
        base_url=live_server.base_url,
        push_secret="s3",
        sweep_every=0.05,
    )
    app.on_job("nightly")(lambda job: {"at": "night"})
    with httpx.Client(base_url=live_server.base_url, headers={"x-api-key": ADMIN_KEY}) as admin:
        job_id = admin.post(f"/spaces/{SPACE}/jobs", json={"name": "nightly"}).json()["id"]
        served = ServeThread(app.asgi())  # uvicorn runs the app's lifespan
        try:
            wait_for(
                lambda: admin.get(f"/jobs/{job_id}").json()["status"] == "completed",
                message="the job swept by the server's lifespan",
            )
        finally:
            served.stop()
        assert admin.get(f"/jobs/{job_id}").json()["result"] == {"at": "night"}


async def test_leaving_the_lifespan_fails_the_swept_job_back_after_the_grace_period(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    client = worker_client(emit)
    app = EmitPush(client=client, push_secret=None, sweep_every=60)
    started = asyncio.Event()

    @app.on_job("long")
    async def long(job: Job) -> None:
        started.set()
        await asyncio.sleep(30)

    job_id = await create(admin, "long", maxRetries=1)
    async with app.lifespan(grace_period=0.1):
        await started.wait()
    document = await job(admin, job_id)
    assert (document["status"], document["attemptNumber"]) == ("pending", 1)  # retried now
    await client.aclose()


def test_sweep_every_must_be_a_positive_number() -> None:
    for bad in (0, -1, float("nan"), True, "60"):
        with pytest.raises(ConfigurationError, match="sweep_every"):
            EmitPush(space_id="s", api_key="k", sweep_every=bad)  # type: ignore[arg-type]


async def _completed(admin: httpx.AsyncClient, job_id: str) -> bool:
    return (await job(admin, job_id))["status"] == "completed"
