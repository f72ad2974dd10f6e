"""The claimed-job helper, against the live server, as sync facade and async job."""

from __future__ import annotations

import inspect
from datetime import datetime

import pytest
from pydantic import BaseModel

from emit_push import (
    AsyncClaimedJob,
    ClaimedJob,
    ConflictError,
    JobDetails,
    JobKilledError,
    JobLogger,
)
from tests.conftest import PRODUCER_KEY, WORKER_KEY
from tests.sdk.conftest import Sdk


class Resize(BaseModel):
    url: str
    width: int


def _public(cls: type) -> dict[str, inspect.Signature]:
    names = {n for n in dir(cls) if not n.startswith("_")}
    return {n: inspect.signature(getattr(cls, n)) for n in names if callable(getattr(cls, n))}


def test_sync_and_async_jobs_offer_the_same_helpers() -> None:
    sync, async_ = _public(ClaimedJob), _public(AsyncClaimedJob)
    assert sync.keys() - {"close"} == async_.keys() - {"aclose"}
    for name in sync.keys() - {"close", "with_payload"}:
        assert list(sync[name].parameters) == list(async_[name].parameters), name
        assert inspect.iscoroutinefunction(getattr(AsyncClaimedJob, name)), name


async def test_a_worker_runs_a_job_with_every_helper(sdk: Sdk) -> None:
    producer, worker = sdk.client(PRODUCER_KEY), sdk.client(WORKER_KEY)
    ref = await sdk(producer.jobs.create({"name": "resize", "payload": {"url": "u", "width": 3}}))
    [job] = await sdk(worker.jobs.poll(types="resize"))
    assert (job.id, job.name, job.payload) == (ref.id, "resize", {"url": "u", "width": 3})
    assert (job.attempt_number, job.max_retries, job.timeout_seconds) == (0, 3, 300)
    assert isinstance(job.created_at, datetime)
    assert isinstance(job.log, JobLogger)
    assert repr(job) == f"{type(job).__name__}(id={ref.id!r}, name='resize', attempt_number=0)"

    assert (await sdk(job.ack())).status == "running"
    job.log.info("starting", metadata={"attempt": job.attempt_number}, source="resizer")
    await sdk(job.progress(10, "Downloading", sub_progress={"download": {"percent": 10}}))
    await sdk(job.checkpoint({"offsetSeconds": 120}))
    await sdk(job.event({"kind": "thumbnail"}))
    await sdk(job.keepalive())
    progress = await sdk(job.get_progress())
    assert progress.progress is not None
    assert (progress.progress.percent, progress.progress.message) == (10, "Downloading")
    state = await sdk(job.complete({"outputUrl": "s3://final/x"}))
    assert state.status == "completed"
    # complete() sent the logs first: they are there without closing the job
    [line] = (await sdk(job.get_logs())).logs
    assert (line.level, line.message, line.source, line.metadata) == (
        "info", "starting", "resizer", {"attempt": 0},
    )  # fmt: skip
    details = await sdk(job.get_details())
    assert isinstance(details, JobDetails)
    assert details.result == {"outputUrl": "s3://final/x"}
    assert [e.type for e in details.events] == [
        "created", "delivered", "running", "progress", "checkpoint", "event", "completed",
    ]  # fmt: skip
    job.log.warn("after the end")  # logs are accepted in every status
    await sdk.close(job)
    assert [e.message for e in (await sdk(job.get_logs())).logs] == ["starting", "after the end"]
    assert not job.killed


async def test_fail_with_an_exception_retries_the_job(sdk: Sdk) -> None:
    client = sdk.client()
    ref = await sdk(client.jobs.create({"name": "flaky", "max_retries": 2}))
    job = await sdk(client.jobs.claim(ref.id))
    await sdk(job.ack())
    state = await sdk(job.fail(ValueError("bad input")))
    assert (state.status, state.attempt_number) == ("pending", 1)
    again = await sdk(client.jobs.claim(ref.id))
    assert again.attempt_number == 1
    await sdk(again.ack())
    await sdk(again.fail("plain text"))
    events = (await sdk(again.get_details())).events
    assert [e.data["error"] for e in events if e.type == "retried"] == [
        "ValueError: bad input", "plain text",
    ]  # fmt: skip
    await sdk.close(job)
    await sdk.close(again)


async def test_a_kill_is_noticed_on_the_next_call(sdk: Sdk) -> None:
    producer, worker = sdk.client(PRODUCER_KEY), sdk.client(WORKER_KEY)
    ref = await sdk(producer.jobs.create({"name": "long"}))
    job = await sdk(worker.jobs.claim(ref.id))
    await sdk(job.ack())
    await sdk(producer.jobs.kill(ref.id, "user cancelled"))
    with pytest.raises(JobKilledError) as caught:
        await sdk(job.progress(50, "halfway"))
    assert caught.value.code == "job_killed"
    assert job.killed
    with pytest.raises(JobKilledError):
        await sdk(job.complete())
    await sdk.close(job)


async def test_kill_from_the_worker(sdk: Sdk) -> None:
    client = sdk.client()
    await sdk(client.jobs.create({"name": "self-kill"}))
    [job] = await sdk(client.jobs.poll(types="self-kill"))
    assert (await sdk(job.kill("giving up"))).status == "killed"
    assert (await sdk(job.get_details())).result == {"reason": "giving up"}
    await sdk.close(job)


async def test_with_payload_gives_a_typed_view_sharing_the_job(sdk: Sdk) -> None:
    client = sdk.client()
    await sdk(client.jobs.create({"name": "typed", "payload": {"url": "u", "width": 640}}))
    [job] = await sdk(client.jobs.poll(types="typed"))
    typed = job.with_payload(Resize.model_validate(job.payload))
    assert type(typed) is type(job)
    assert typed.payload == Resize(url="u", width=640)
    assert typed.id == job.id
    assert typed.log is job.log
    await sdk(typed.ack())
    with pytest.raises(ConflictError):
        await sdk(job.ack())  # the same job: already running
    await sdk(typed.complete())
    await sdk.close(typed)


async def test_the_context_manager_flushes_logs(sdk: Sdk) -> None:
    client = sdk.client()
    await sdk(client.jobs.create({"name": "ctx"}))
    [job] = await sdk(client.jobs.poll(types="ctx"))
    if sdk.is_async:
        async with job:
            job.log.info("inside")
    else:
        with job:
            job.log.info("inside")
    assert [e.message for e in (await sdk(job.get_logs())).logs] == ["inside"]
    assert (job.log.sent, job.log.buffered, job.log.lost) == (1, 0, 0)
