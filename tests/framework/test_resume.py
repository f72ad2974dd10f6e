"""Resume: ``job.last_checkpoint()`` is the last checkpoint an earlier attempt stored, read
from the job's history on a retry (one GET, then kept), with no call on a first attempt."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from emit_push import EmitPush, Job, JobDetails, SyncJob
from emit_push._sdk.view import earlier_checkpoint
from emit_push.server import EmitServer
from emit_push.testing import run_handler
from tests.framework.conftest import create, job, push, worker_client

MakeApp = Callable[..., EmitPush]


class Counting(httpx.AsyncBaseTransport):
    """The in-process server's transport, keeping each request's method and path."""

    def __init__(self, emit: EmitServer) -> None:
        self._inner = httpx.ASGITransport(app=emit.app)
        self.requests: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path.removeprefix("/api/v1")))
        return await self._inner.handle_async_request(request)

    def reads_of(self, job_id: str) -> int:
        return self.requests.count(("GET", f"/jobs/{job_id}"))


@pytest.fixture
def counting(emit: EmitServer) -> Counting:
    return Counting(emit)


@pytest.fixture
def app(make_app: MakeApp, emit: EmitServer, counting: Counting) -> EmitPush:
    return make_app(client=worker_client(emit, transport=counting))


async def test_a_retry_resumes_from_the_checkpoint_the_failed_attempt_stored(
    app: EmitPush, admin: httpx.AsyncClient, counting: Counting
) -> None:
    seen: list[tuple[int, dict[str, Any] | None]] = []

    @app.on_job("transcode")
    async def transcode(job: Job[dict[str, int]]) -> dict[str, int]:
        start = await job.last_checkpoint()
        seen.append((job.attempt_number, start))
        offset = (start or {"offset": 0})["offset"]
        await job.checkpoint({"offset": offset + 10})
        assert await job.last_checkpoint() == start  # kept: this attempt's own do not count
        if job.attempt_number == 0:
            await job.checkpoint({"offset": offset + 20})
            raise RuntimeError("the encoder crashed")
        return {"resumed_at": offset}

    job_id = await create(admin, "transcode", {"seconds": 60}, maxRetries=2)
    assert (await push(app, job_id, "transcode")).status == "failed"
    assert counting.reads_of(job_id) == 0  # a first attempt reads nothing
    assert (await push(app, job_id, "transcode")).status == "completed"
    assert counting.reads_of(job_id) == 1  # the retry: one read, however often asked
    assert seen == [(0, None), (1, {"offset": 20})]
    document = await job(admin, job_id)
    assert document["result"] == {"resumed_at": 20}
    checkpoints = [e for e in document["events"] if e["type"] == "checkpoint"]
    assert [(e["attemptNumber"], e["data"]) for e in checkpoints] == [
        (0, {"offset": 10}), (0, {"offset": 20}), (1, {"offset": 30}),
    ]  # fmt: skip


async def test_a_def_handler_resumes_through_its_sync_job(
    app: EmitPush, admin: httpx.AsyncClient, counting: Counting
) -> None:
    @app.on_job("count")
    def count(job: SyncJob) -> dict[str, Any]:
        start = job.last_checkpoint()
        if start is None:
            job.checkpoint({"done": 3})
            raise RuntimeError("interrupted")
        assert job.last_checkpoint() is start
        return {"from": start["done"], "attempt": job.attempt_number}

    job_id = await create(admin, "count", maxRetries=1)
    assert (await push(app, job_id, "count")).status == "failed"
    assert counting.reads_of(job_id) == 0
    assert (await push(app, job_id, "count")).status == "completed"
    assert counting.reads_of(job_id) == 1
    assert (await job(admin, job_id))["result"] == {"from": 3, "attempt": 1}


async def test_a_retry_without_a_checkpoint_reads_none_once(
    app: EmitPush, admin: httpx.AsyncClient, counting: Counting
) -> None:
    @app.on_job("flaky")
    async def flaky(job: Job) -> Any:
        if job.attempt_number == 0:
            raise RuntimeError("first try")
        return [await job.last_checkpoint(), await job.last_checkpoint()]

    job_id = await create(admin, "flaky", maxRetries=1)
    await push(app, job_id, "flaky")
    assert (await push(app, job_id, "flaky")).status == "completed"
    assert (await job(admin, job_id))["result"] == [None, None]
    assert counting.reads_of(job_id) == 1


# -- in the test helpers ------------------------------------------------------------------


async def resumable(job: Job[dict[str, int]]) -> dict[str, Any]:
    start = await job.last_checkpoint()
    await job.checkpoint({"line": job.payload["lines"]})
    return {"from": (start or {}).get("line", 0), "cached": await job.last_checkpoint() == start}


async def test_run_handler_gives_the_job_an_earlier_checkpoint() -> None:
    recording = await run_handler(resumable, {"lines": 9}, attempt_number=1, checkpoint={"line": 4})
    assert recording.result == {"from": 4, "cached": True}
    assert recording.checkpoints == [{"line": 9}]  # what this run stored, only
    assert [(c.method, c.action) for c in recording.calls if c.method == "GET"] == [("GET", "get")]


async def test_run_handler_on_a_first_attempt_reads_nothing() -> None:
    recording = await run_handler(resumable, {"lines": 9})
    assert recording.result == {"from": 0, "cached": True}
    assert [c for c in recording.calls if c.method == "GET"] == []
    retry = await run_handler(resumable, {"lines": 9}, attempt_number=2)
    assert retry.result == {"from": 0, "cached": True}  # retried, but nothing was stored
    assert [c.action for c in retry.calls if c.method == "GET"] == ["get"]


def test_run_handler_sync_gives_a_def_handler_its_earlier_checkpoint() -> None:
    from emit_push.testing import run_handler_sync

    def lines(job: SyncJob[dict[str, int]]) -> Any:
        return [job.last_checkpoint(), job.last_checkpoint()]

    recording = run_handler_sync(lines, {"lines": 3}, attempt_number=3, checkpoint={"line": 2})
    assert recording.result == [{"line": 2}, {"line": 2}]
    assert [c.action for c in recording.calls if c.method == "GET"] == ["get"]


async def test_run_handler_refuses_a_checkpoint_on_a_first_attempt() -> None:
    with pytest.raises(ValueError, match="give attempt_number=1 or more"):
        await run_handler(resumable, {"lines": 1}, checkpoint={"line": 4})


# -- reading the history ------------------------------------------------------------------

AT = datetime(2025, 2, 24, 10, 30, tzinfo=UTC)


def details(*events: tuple[str, Any, int | None, int], **extra: Any) -> JobDetails:
    return JobDetails.model_validate(
        {
            "id": "j",
            "name": "n",
            "status": "running",
            "events": [
                {"type": kind, "data": data, "attemptNumber": attempt, "createdAt": AT + timedelta(seconds=s)}
                for kind, data, attempt, s in events
            ],
            **extra,
        }
    )  # fmt: skip


def test_the_latest_checkpoint_of_an_earlier_attempt_is_the_one() -> None:
    history = details(
        ("created", None, 0, 0),
        ("checkpoint", {"at": 1}, 0, 1),
        ("progress", {"percent": 5}, 0, 2),
        ("checkpoint", {"at": 2}, 1, 3),
        ("retried", {"error": "x"}, 1, 4),
        ("checkpoint", {"at": 3}, 2, 5),  # this attempt's own
    )
    assert earlier_checkpoint(history, 2) == {"at": 2}
    assert earlier_checkpoint(history, 1) == {"at": 1}
    assert earlier_checkpoint(history, 0) is None
    assert earlier_checkpoint(None, 3) is None


def test_a_history_newest_first_is_read_the_other_way() -> None:
    history = details(("checkpoint", {"at": 2}, 0, 9), ("checkpoint", {"at": 1}, 0, 1))
    assert earlier_checkpoint(history, 1) == {"at": 2}


def test_events_without_an_attempt_count_and_odd_data_is_passed_over() -> None:
    history = details(("checkpoint", {"at": 1}, None, 1), ("checkpoint", [1, 2], 0, 2))
    assert earlier_checkpoint(history, 1) == {"at": 1}


def test_the_jobs_own_checkpoint_field_covers_a_page_of_events_without_one() -> None:
    page = details(("progress", {"percent": 5}, 0, 1), checkpoint={"at": 7})
    assert earlier_checkpoint(page, 1) == {"at": 7}
    # A page that holds checkpoints speaks for itself: the field may be this attempt's.
    page = details(("checkpoint", {"at": 8}, 1, 1), checkpoint={"at": 8})
    assert earlier_checkpoint(page, 1) is None
