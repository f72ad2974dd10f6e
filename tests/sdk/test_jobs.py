"""``client.jobs``: every call against the local emit server on real uvicorn, both clients."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta

import pytest

from emit_push import (
    AsyncClaimedJob,
    AsyncEmitClient,
    ClaimedJob,
    ConflictError,
    EmitClient,
    InvalidInputError,
    JobDetails,
    JobEvent,
    JobRef,
    JobSpec,
    LogEntry,
)
from emit_push._sdk.jobs import AsyncJobs, Jobs
from tests.conftest import SPACE, WORKER_KEY
from tests.sdk.conftest import Sdk


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_")
    }


def test_twins_have_the_same_methods() -> None:
    sync, async_ = _public(Jobs), _public(AsyncJobs)
    assert sync.keys() == async_.keys()
    assert {"create", "get", "list", "poll", "claim", "ack", "progress", "checkpoint"} < set(sync)
    assert {"event", "keepalive", "logs", "append_logs", "get_progress", "complete"} < set(sync)
    assert {"fail", "kill"} < set(sync)
    for name in sync:
        assert list(sync[name].parameters) == list(async_[name].parameters), name
        assert inspect.iscoroutinefunction(getattr(AsyncJobs, name)), name


async def test_create_one_and_get(sdk: Sdk) -> None:
    client = sdk.client()
    ref = await sdk(client.jobs.create({"name": "email", "payload": {"to": "a@b.c"}}))
    assert isinstance(ref, JobRef)
    assert ref.space_id == SPACE
    assert ref.status == "pending"
    job = await sdk(client.jobs.get(ref.id))
    assert isinstance(job, JobDetails)
    assert (job.id, job.name, job.status, job.payload) == (
        ref.id,
        "email",
        "pending",
        {"to": "a@b.c"},
    )
    assert (job.max_retries, job.timeout_seconds, job.attempt_number) == (3, 300, 0)
    assert [e.type for e in job.events] == ["created"]
    assert isinstance(job.events[0], JobEvent)
    assert job.model_extra is not None
    assert "checkpoint" in job.model_extra  # a field the contract does not list is kept


async def test_create_accepts_snake_and_camel_keys_and_models(sdk: Sdk) -> None:
    client = sdk.client()
    later = datetime.now(UTC) + timedelta(hours=1)
    refs = await sdk(
        client.jobs.create(
            [
                {"name": "a", "max_retries": 5, "timeout_seconds": 60},
                {"name": "b", "maxRetries": 7, "timeoutSeconds": 61, "scheduledFor": later},
                JobSpec(name="c", scheduled_for=later.isoformat(), callback_url="http://x.test/cb"),
            ]
        )
    )
    assert [type(r) for r in refs] == [JobRef] * 3
    a, b, c = [await sdk(client.jobs.get(r.id)) for r in refs]
    assert (a.name, a.max_retries, a.timeout_seconds, a.status) == ("a", 5, 60, "pending")
    assert (b.name, b.max_retries, b.timeout_seconds, b.status) == ("b", 7, 61, "scheduled")
    assert b.scheduled_for is not None
    assert abs(b.scheduled_for - later) < timedelta(milliseconds=1)
    assert (c.status, c.callback_url) == ("scheduled", "http://x.test/cb")


async def test_create_bulk_keeps_request_order(sdk: Sdk) -> None:
    jobs = sdk.client().jobs
    refs = await sdk(jobs.create([{"name": f"n{i}"} for i in range(30)]))
    names = [(await sdk(jobs.get(r.id))).name for r in refs]
    assert names == [f"n{i}" for i in range(30)]


async def test_create_refuses_what_it_cannot_send(sdk: Sdk) -> None:
    jobs = sdk.client().jobs
    with pytest.raises(InvalidInputError):
        await sdk(jobs.create({"payload": 1}))  # no name
    with pytest.raises(InvalidInputError):
        await sdk(jobs.create([]))
    with pytest.raises(InvalidInputError):
        await sdk(jobs.create({"name": "x", "payload": object()}))


async def test_list_filters_and_pages(sdk: Sdk) -> None:
    jobs = sdk.client().jobs
    refs = await sdk(jobs.create([{"name": f"l{i}"} for i in range(5)]))
    await sdk(jobs.kill(refs[0].id, "not needed"))
    newest = await sdk(jobs.list(limit=3))
    assert [j.id for j in newest] == [r.id for r in reversed(refs)][:3]
    assert [j.id for j in await sdk(jobs.list(limit=2, offset=3))] == [refs[1].id, refs[0].id]
    killed = await sdk(jobs.list(status="killed"))
    assert [j.id for j in killed] == [refs[0].id]
    assert killed[0].result == {"reason": "not needed"}


async def test_poll_claims_oldest_first_with_a_type_filter(sdk: Sdk) -> None:
    client = sdk.client()
    refs = await sdk(client.jobs.create([{"name": "p"}, {"name": "q"}, {"name": "p"}]))
    jobs = await sdk(client.jobs.poll(count=5, types="p"))
    assert [j.id for j in jobs] == [refs[0].id, refs[2].id]
    assert all(isinstance(j, AsyncClaimedJob if sdk.is_async else ClaimedJob) for j in jobs)
    assert await sdk(client.jobs.poll(types=["p"])) == []
    [other] = await sdk(client.jobs.poll(types=["p", "q"]))
    assert other.id == refs[1].id
    for job in [*jobs, other]:
        await sdk.close(job)


async def test_claim_then_every_worker_call(sdk: Sdk) -> None:
    producer, worker = sdk.client(), sdk.client(WORKER_KEY)
    ref = await sdk(producer.jobs.create({"name": "w", "payload": [1, 2]}))
    job = await sdk(worker.jobs.claim(ref.id))
    assert (job.id, job.name, job.payload, job.attempt_number) == (ref.id, "w", [1, 2], 0)
    with pytest.raises(ConflictError):
        await sdk(worker.jobs.claim(ref.id))
    j = worker.jobs
    assert (await sdk(j.ack(ref.id))).status == "running"
    state = await sdk(j.progress(ref.id, 40, "downloading", {"dl": {"percent": 80}}))
    assert (state.id, state.status, state.attempt_number) == (ref.id, "running", 0)
    await sdk(j.checkpoint(ref.id, {"offset": 120}))
    await sdk(j.event(ref.id, {"kind": "custom"}))
    await sdk(j.keepalive(ref.id))
    progress = await sdk(j.get_progress(ref.id))
    assert progress.progress is not None
    assert (progress.job_id, progress.status, progress.progress.percent) == (ref.id, "running", 40)
    assert progress.progress.message == "downloading"
    assert progress.progress.sub_progress is not None
    assert progress.progress.sub_progress["dl"].percent == 80
    assert (await sdk(j.complete(ref.id, {"url": "s3://x"}))).status == "completed"
    done = await sdk(j.get(ref.id))
    assert done.result == {"url": "s3://x"}
    types = [e.type for e in done.events]
    assert types == [
        "created",
        "delivered",
        "running",
        "progress",
        "checkpoint",
        "event",
        "completed",
    ]
    await sdk.close(job)


async def test_fail_retries_then_dies(sdk: Sdk) -> None:
    jobs = sdk.client().jobs
    ref = await sdk(jobs.create({"name": "f", "max_retries": 1}))
    for attempt, status in [(0, "pending"), (1, "dead")]:
        job = await sdk(jobs.claim(ref.id))
        assert job.attempt_number == attempt
        await sdk(jobs.ack(ref.id))
        state = await sdk(jobs.fail(ref.id, RuntimeError(f"broke {attempt}")))
        assert state.status == status
        await sdk.close(job)
    dead = await sdk(jobs.get(ref.id))
    assert dead.result == {"error": "RuntimeError: broke 1"}


async def test_kill(sdk: Sdk) -> None:
    jobs = sdk.client().jobs
    ref = await sdk(jobs.create({"name": "k"}))
    assert (await sdk(jobs.kill(ref.id))).status == "killed"
    assert (await sdk(jobs.get(ref.id))).result == {"reason": None}


async def test_append_and_read_logs(sdk: Sdk) -> None:
    jobs = sdk.client().jobs
    ref = await sdk(jobs.create({"name": "logs"}))
    when = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    accepted = await sdk(
        jobs.append_logs(
            ref.id,
            [
                {"level": "info", "message": "one", "metadata": {"n": 1}},
                LogEntry(level="error", message="two", source="unit", ts=when),
                {"level": "debug", "message": "three"},
            ],
        )
    )
    assert (accepted.accepted, accepted.first_seq, accepted.last_seq) == (3, 1, 3)
    plain = await sdk(jobs.append_logs(ref.id, [{"level": "warn", "message": "four"}], gzip=False))
    assert plain.first_seq == 4
    page = await sdk(jobs.logs(ref.id))
    assert [(e.seq, e.level, e.message) for e in page.logs] == [
        (1, "info", "one"), (2, "error", "two"), (3, "debug", "three"), (4, "warn", "four"),
    ]  # fmt: skip
    assert page.logs[0].metadata == {"n": 1}
    assert (page.logs[1].source, page.logs[1].ts) == ("unit", when)
    assert page.next_cursor is None
    first = await sdk(jobs.logs(ref.id, limit=2))
    assert [e.seq for e in first.logs] == [1, 2]
    assert first.next_cursor == 2
    rest = await sdk(jobs.logs(ref.id, after=first.next_cursor))
    assert [e.seq for e in rest.logs] == [3, 4]
    assert [e.message for e in (await sdk(jobs.logs(ref.id, level="warn"))).logs] == ["two", "four"]
    assert [e.message for e in (await sdk(jobs.logs(ref.id, q="THR"))).logs] == ["three"]
    assert [e.seq for e in (await sdk(jobs.logs(ref.id, before=2))).logs] == [1]


def test_client_types_match_their_kind() -> None:
    assert isinstance(EmitClient(space_id="s", api_key="k").jobs, Jobs)
    assert isinstance(AsyncEmitClient(space_id="s", api_key="k").jobs, AsyncJobs)
