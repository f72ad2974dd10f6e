"""A run's calls settle through transient failures; its deadline follows the service's
timer; nothing is sent for a run once it is answered (issue 10, items 1, 3 and 4)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from emit_push import DeadlineExceeded, EmitPush, Job, SyncJob
from emit_push.server import EmitServer
from tests.framework.conftest import create, job, logs, push, worker_client
from tests.waiting import eventually

MakeApp = Callable[..., EmitPush]

WORKER_CALLS = ("/ack", "/progress", "/checkpoint", "/keepalive", "/complete", "/fail", "/logs")


class Flaky(httpx.AsyncBaseTransport):
    """Answers 503, before the server sees it, to the first ``times`` tries of each
    worker call (by job and action): more than a client's retries allow."""

    def __init__(self, emit: EmitServer, times: int) -> None:
        self.inner = httpx.ASGITransport(app=emit.app)
        self.times = times
        self.tries: Counter[tuple[str, str]] = Counter()
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        action = next((a for a in WORKER_CALLS if path.endswith(a)), None)
        if action is not None and request.method == "POST":
            self.tries[(path, action)] += 1
            if self.tries[(path, action)] <= self.times:
                self.refused += 1
                return httpx.Response(503, json={"error": "injected", "code": "unavailable"})
        return await self.inner.handle_async_request(request)


async def test_every_call_of_a_run_goes_through_more_failures_than_retries(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    """Each worker call fails 3 times, the client retries twice: the run still settles."""
    flaky = Flaky(emit, times=3)
    client = worker_client(emit, transport=flaky, max_retries=2)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:  # the backoff, without the wait
        sleeps.append(seconds)

    client._driver.sleep = sleep
    app = EmitPush(client=client, push_secret=None)

    @app.on_job("steady")
    async def steady(job: Job) -> str:
        job.log.info("one")
        await job.progress(50, "halfway")
        await job.checkpoint({"at": 50})
        job.log.info("two")
        return "done"

    job_id = await create(admin, "steady")
    result = await push(app, job_id)
    await client.aclose()
    assert result.status == "completed", result
    document = await job(admin, job_id)
    assert document["status"] == "completed"
    assert document["result"] == "done"
    assert await logs(admin, job_id) == ["one", "two"]
    tries = {action: n for (_, action), n in flaky.tries.items()}
    for action in ("/ack", "/progress", "/checkpoint", "/complete"):
        assert tries[action] == 4, tries  # three refusals, then through
    assert len(sleeps) >= 4 * 3  # each refusal waited out, past the client's 2 retries


@pytest.mark.slow
async def test_progress_re_arms_the_deadline_when_keepalives_are_off(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    """The service's timer is re-armed by each progress: so is the run's deadline."""
    app = make_app(keepalive_interval=None, deadline_margin=0.5)

    @app.on_job("steps")
    async def steps(job: Job) -> int:
        for step in range(8):  # 2.4 s in all, with a 2 s timeout re-armed every 0.3 s
            await asyncio.sleep(0.3)
            await job.progress(step * 12, f"step {step}")
        return 8

    job_id = await create(admin, "steps", timeoutSeconds=2, maxRetries=0)
    result = await push(app, job_id)
    assert result.status == "completed", result
    assert (await job(admin, job_id))["status"] == "completed"


async def test_without_progress_the_job_timeout_still_stops_the_run(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app(keepalive_interval=None, deadline_margin=0.5)
    started = asyncio.Event()

    @app.on_job("silent")
    async def silent(job: Job) -> None:
        started.set()
        await asyncio.Event().wait()

    job_id = await create(admin, "silent", timeoutSeconds=1, maxRetries=0)
    result = await push(app, job_id)
    assert started.is_set()
    assert (result.status, result.reason) == ("failed", "deadline exceeded")


async def test_a_late_def_handler_sends_nothing_after_the_answer(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app(max_runtime=0.3, deadline_margin=0.1)
    release = threading.Event()
    seen: list[BaseException | str] = []
    done = threading.Event()
    views: list[SyncJob] = []

    @app.on_job("late")
    def late(job: SyncJob) -> None:
        views.append(job)
        job.log.info("before the deadline")
        release.wait(10)  # past the deadline: the run is answered meanwhile
        job.log.info("after the answer")
        try:
            job.progress(90, "still here")
            seen.append("sent")
        except DeadlineExceeded as exc:
            seen.append(exc)
        done.set()

    job_id = await create(admin, "late", maxRetries=0)
    result = await push(app, job_id)
    assert (result.status, result.reason) == ("failed", "deadline exceeded")
    release.set()
    assert await asyncio.to_thread(done.wait, 10)
    assert len(seen) == 1
    assert isinstance(seen[0], DeadlineExceeded)
    # The late line is refused unsent: counted and warned about, not silently dropped.
    await eventually(lambda: views[0].log.lost == 1, message="the late line counted lost")
    assert await logs(admin, job_id) == ["before the deadline"]
    events = [e["type"] for e in (await job(admin, job_id))["events"]]
    assert "progress" not in events


async def test_a_handler_that_swallows_its_cancellation_cannot_send(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app(max_runtime=0.3, deadline_margin=0.1)
    release = asyncio.Event()
    finished = asyncio.Event()
    seen: list[BaseException | str] = []
    jobs: list[Job] = []

    @app.on_job("stubborn")
    async def stubborn(job: Job) -> None:
        jobs.append(job)
        with contextlib.suppress(asyncio.CancelledError):  # swallowed: the handler goes on
            await asyncio.Event().wait()
        await release.wait()
        job.log.info("after the answer")
        for call in (lambda: job.progress(99, "x"), lambda: job.complete("late")):
            try:
                await call()
                seen.append("sent")
            except DeadlineExceeded as exc:
                seen.append(exc)
        finished.set()

    job_id = await create(admin, "stubborn", maxRetries=0)
    result = await push(app, job_id)
    assert (result.status, result.reason) == ("failed", "deadline exceeded")
    release.set()
    await asyncio.wait_for(finished.wait(), 10)
    assert len(seen) == 2
    assert all(isinstance(s, DeadlineExceeded) for s in seen), seen
    await jobs[0].aclose()
    document = await job(admin, job_id)
    assert document["status"] == "dead"
    assert await logs(admin, job_id) == []
    assert jobs[0].log.lost == 1


class LostClaimAnswer(httpx.AsyncBaseTransport):
    """Passes each claim on, then answers 503: the claim landed, its answer was lost."""

    def __init__(self, emit: EmitServer) -> None:
        self.inner = httpx.ASGITransport(app=emit.app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/claim"):
            await response.aread()
            return httpx.Response(503, json={"error": "injected", "code": "unavailable"})
        return response


async def test_a_claim_whose_answer_was_lost_is_decided_by_the_job(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    """The job left pending: the push is decided (``skipped``), not answered 503."""
    client = worker_client(emit, transport=LostClaimAnswer(emit), max_retries=0)
    app = EmitPush(client=client, push_secret=None)
    ran: list[str] = []

    @app.on_job("once")
    async def once(job: Job) -> None:
        ran.append(job.id)

    job_id = await create(admin, "once")
    result = await push(app, job_id)
    await client.aclose()
    assert (result.status, result.http_status) == ("skipped", 200), result
    assert "already claimed" in (result.reason or "")
    assert ran == []
    assert (await job(admin, job_id))["status"] == "delivered"  # the lost claim's


async def test_the_last_log_flush_is_tried_at_the_deadline_not_a_backoff_before() -> None:
    """The logs' final flush retries through failures until ``until``: a backoff that
    would pass it is cut short, so the last try is made then (the lines still go out)."""
    from emit_push._framework.job import flush_until

    now = 0.0
    tries: list[float] = []

    async def flush() -> bool:
        tries.append(round(now, 3))
        return len(tries) == 4  # three failures, then through

    async def sleep(seconds: float) -> None:
        nonlocal now
        now += seconds

    assert await flush_until(flush, 0.5, lambda: False, clock=lambda: now, sleep=sleep)
    assert tries == [0.0, 0.1, 0.3, 0.5]  # was given up at 0.3 (0.3 + 0.4 > 0.5)
    tries.clear()
    now = 0.0
    assert not await flush_until(flush, 0.25, lambda: False, clock=lambda: now, sleep=sleep)
    assert tries == [0.0, 0.1, 0.25]  # nothing after the deadline
    assert not await flush_until(flush, 9, lambda: True, clock=lambda: now, sleep=sleep)
    assert tries == [0.0, 0.1, 0.25]  # the run is over: nothing is sent
