"""The state machine of contract §2: every transition and every timer, on a manual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from emit_push.server import EmitServer, ManualClock, ServerConfig
from tests.conftest import SPACE, make_config
from tests.server.conftest import call, create, event_types, job, start


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start_ms=1_767_225_600_000)  # 2026-01-01T00:00:00Z


@pytest.fixture
def server_config(clock: ManualClock) -> ServerConfig:
    return make_config(clock=clock)


def fire(emit: EmitServer, clock: ManualClock, seconds: float) -> int:
    clock.advance(seconds)
    return emit.scheduler.run_due()


async def test_create_then_poll_ack_complete(http: httpx.AsyncClient) -> None:
    job_id = await create(http, "email", payload={"to": "ada"})
    assert (await job(http, job_id))["status"] == "pending"
    polled = (await http.post(f"/spaces/{SPACE}/jobs/poll", json={})).json()
    assert [j["id"] for j in polled["jobs"]] == [job_id]
    assert polled["jobs"][0] == {
        "id": job_id,
        "spaceId": SPACE,
        "name": "email",
        "payload": {"to": "ada"},
        "timeoutSeconds": 300,
        "maxRetries": 3,
        "attemptNumber": 0,
        "createdAt": "2026-01-01T00:00:00.000Z",
    }
    assert (await call(http, job_id, "ack")).json() == {
        "id": job_id,
        "status": "running",
        "attemptNumber": 0,
    }
    reply = await call(http, job_id, "complete", {"result": {"sent": True}})
    assert reply.json()["status"] == "completed"
    document = await job(http, job_id)
    assert document["result"] == {"sent": True}
    assert document["completedAt"] == "2026-01-01T00:00:00.000Z"
    assert event_types(document) == ["created", "delivered", "running", "completed"]


async def test_poll_hands_out_oldest_first_and_never_twice(
    http: httpx.AsyncClient, clock: ManualClock
) -> None:
    ids = []
    for n in range(5):
        ids.append(await create(http, f"n{n}"))
        clock.advance(0.001)
    first = (await http.post(f"/spaces/{SPACE}/jobs/poll", json={"count": 2})).json()["jobs"]
    rest = (await http.post(f"/spaces/{SPACE}/jobs/poll", json={"count": 50})).json()["jobs"]
    empty = (await http.post(f"/spaces/{SPACE}/jobs/poll", json={"count": 50})).json()
    assert [j["id"] for j in first] == ids[:2]
    assert [j["id"] for j in rest] == ids[2:]
    assert empty == {"jobs": []}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"types": ["a", "b"], "type": "c"}, {"a", "b"}),
        ({"type": "c", "names": ["a"]}, {"c"}),
        ({"names": ["b"], "name": "a"}, {"b"}),
        ({"name": "a"}, {"a"}),
        ({"types": "b"}, {"b"}),
        ({}, {"a", "b", "c"}),
    ],
)
async def test_poll_filter_precedence(
    http: httpx.AsyncClient, body: dict[str, object], expected: set[str]
) -> None:
    for name in ("a", "b", "c"):
        await create(http, name)
    jobs = (await http.post(f"/spaces/{SPACE}/jobs/poll", json={"count": 10, **body})).json()
    assert {j["name"] for j in jobs["jobs"]} == expected


async def test_fail_retries_immediately_then_dies(http: httpx.AsyncClient) -> None:
    job_id = await create(http, maxRetries=1)
    await start(http, job_id)
    reply = (await call(http, job_id, "fail", {"error": "boom"})).json()
    assert reply == {"id": job_id, "status": "pending", "attemptNumber": 1}
    await start(http, job_id)
    reply = (await call(http, job_id, "fail", {"error": "boom again"})).json()
    assert reply == {"id": job_id, "status": "dead", "attemptNumber": 1}
    document = await job(http, job_id)
    assert document["result"] == {"error": "boom again"}
    retried = [e for e in document["events"] if e["type"] == "retried"]
    assert retried[0]["data"] == {"error": "boom", "attemptNumber": 1}
    assert event_types(document)[-1] == "dead"


async def test_max_retries_zero_dies_at_first_failure(http: httpx.AsyncClient) -> None:
    job_id = await create(http, maxRetries=0)
    await start(http, job_id)
    assert (await call(http, job_id, "fail", {"error": "x"})).json()["status"] == "dead"


async def test_delivery_timeout_requeues_without_consuming_an_attempt(
    emit: EmitServer, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    job_id = await create(http, timeoutSeconds=10)
    assert (await call(http, job_id, "claim")).status_code == 200
    assert fire(emit, clock, 9.999) == 0
    assert (await job(http, job_id))["status"] == "delivered"
    assert fire(emit, clock, 0.001) == 1
    document = await job(http, job_id)
    assert (document["status"], document["attemptNumber"]) == ("pending", 0)
    assert document["deliveredAt"] is None
    assert document["events"][-1]["data"] == {"reason": "delivery_timeout"}
    # the late ack of the first delivery is refused
    assert (await call(http, job_id, "ack")).json()["code"] == "invalid_state"


async def test_execution_timeout_counts_as_a_failure(
    emit: EmitServer, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    job_id = await create(http, timeoutSeconds=10, maxRetries=1)
    await start(http, job_id)
    fire(emit, clock, 10)
    document = await job(http, job_id)
    assert (document["status"], document["attemptNumber"]) == ("pending", 1)
    assert document["events"][-1]["data"] == {"error": "timeout", "attemptNumber": 1}
    await start(http, job_id)
    fire(emit, clock, 10)
    document = await job(http, job_id)
    assert (document["status"], document["result"]) == ("dead", {"error": "timeout"})


@pytest.mark.parametrize("action", ["progress", "checkpoint", "keepalive"])
async def test_progress_checkpoint_and_keepalive_rearm_the_timer(
    emit: EmitServer, http: httpx.AsyncClient, clock: ManualClock, action: str
) -> None:
    bodies = {"progress": {"percent": 1, "message": "m"}, "checkpoint": {"at": 1}}
    job_id = await create(http, timeoutSeconds=10)
    await start(http, job_id)
    for _ in range(3):
        fire(emit, clock, 9)
        assert (await call(http, job_id, action, bodies.get(action))).status_code == 200
    fire(emit, clock, 9.999)
    assert (await job(http, job_id))["status"] == "running"
    fire(emit, clock, 0.001)
    assert (await job(http, job_id))["status"] == "pending"


async def test_custom_events_do_not_rearm_the_timer(
    emit: EmitServer, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    job_id = await create(http, timeoutSeconds=10)
    await start(http, job_id)
    fire(emit, clock, 9)
    assert (await call(http, job_id, "event", {"kind": "note"})).status_code == 200
    fire(emit, clock, 1)
    assert (await job(http, job_id))["status"] == "pending"


async def test_scheduled_job_is_released_when_due(
    emit: EmitServer, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    at = datetime.fromtimestamp(clock.now_ms() / 1000, UTC) + timedelta(minutes=5)
    job_id = await create(http, scheduledFor=at.isoformat())
    document = await job(http, job_id)
    assert (document["status"], document["scheduledFor"]) == (
        "scheduled",
        "2026-01-01T00:05:00.000Z",
    )
    assert (await http.post(f"/spaces/{SPACE}/jobs/poll", json={})).json() == {"jobs": []}
    fire(emit, clock, 299.999)
    assert (await job(http, job_id))["status"] == "scheduled"
    fire(emit, clock, 0.001)
    document = await job(http, job_id)
    assert document["status"] == "pending"
    assert document["events"][-1]["data"] == {"reason": "scheduled"}


@pytest.mark.parametrize("status", ["scheduled", "pending", "delivered", "running"])
async def test_kill_from_every_live_status(
    http: httpx.AsyncClient, clock: ManualClock, status: str
) -> None:
    at = datetime.fromtimestamp(clock.now_ms() / 1000 + 60, UTC).isoformat()
    job_id = await create(http, **({"scheduledFor": at} if status == "scheduled" else {}))
    if status in {"delivered", "running"}:
        await call(http, job_id, "claim")
    if status == "running":
        await call(http, job_id, "ack")
    assert (await job(http, job_id))["status"] == status
    reply = await call(http, job_id, "kill", {"reason": "not needed"})
    assert reply.json() == {"id": job_id, "status": "killed", "attemptNumber": 0}
    assert (await job(http, job_id))["result"] == {"reason": "not needed"}


async def test_worker_calls_on_a_killed_job_answer_job_killed(http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    await start(http, job_id)
    assert (await call(http, job_id, "kill")).status_code == 200
    for action, body in [
        ("progress", {"percent": 5, "message": "m"}),
        ("checkpoint", {}),
        ("event", {}),
        ("keepalive", None),
        ("complete", {"result": 1}),
        ("fail", {"error": "e"}),
        ("ack", None),
        ("claim", None),
        ("kill", None),
    ]:
        reply = await call(http, job_id, action, body)
        assert (reply.status_code, reply.json()["code"]) == (409, "job_killed"), action
    logs = await http.post(f"/jobs/{job_id}/logs", content=b'{"level":"info","message":"late"}\n')
    assert logs.json()["accepted"] == 1  # logs are accepted in every status


@pytest.mark.parametrize(
    ("setup", "action"),
    [
        ([], "ack"),
        ([], "progress"),
        ([], "complete"),
        ([], "fail"),
        (["claim"], "claim"),
        (["claim"], "complete"),
        (["claim"], "checkpoint"),
        (["claim", "ack"], "ack"),
        (["claim", "ack"], "claim"),
        (["claim", "ack", "complete"], "fail"),
        (["claim", "ack", "complete"], "kill"),
        (["claim", "ack", "complete"], "keepalive"),
    ],
)
async def test_calls_in_the_wrong_status_answer_invalid_state(
    http: httpx.AsyncClient, setup: list[str], action: str
) -> None:
    bodies = {
        "progress": {"percent": 1, "message": "m"},
        "checkpoint": {},
        "fail": {"error": "e"},
        "complete": {"result": None},
    }
    job_id = await create(http)
    for step in setup:
        assert (await call(http, job_id, step, bodies.get(step))).status_code == 200
    before = await job(http, job_id)
    reply = await call(http, job_id, action, bodies.get(action))
    assert (reply.status_code, reply.json()["code"]) == (409, "invalid_state")
    assert before["status"] in reply.json()["error"]
    assert (await job(http, job_id))["status"] == before["status"]


async def test_progress_and_checkpoint_are_stored(http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    await start(http, job_id)
    progress = {
        "percent": 42.5,
        "message": "Transcoding",
        "subProgress": {"audio": {"percent": 100, "message": "done"}, "video": {"percent": 10}},
    }
    assert (await call(http, job_id, "progress", progress)).status_code == 200
    assert (await call(http, job_id, "checkpoint", {"offset": 120})).status_code == 200
    view = (await http.get(f"/jobs/{job_id}/progress")).json()
    assert view == {
        "jobId": job_id,
        "status": "running",
        "progress": {**progress, "updatedAt": "2026-01-01T00:00:00.000Z"},
    }
    document = await job(http, job_id)
    assert document["checkpoint"] == {"offset": 120}
    assert document["progress"] == view["progress"]


async def test_a_job_scheduled_for_later_records_a_scheduled_event(
    emit: EmitServer, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    at = datetime.fromtimestamp(clock.now_ms() / 1000 + 60, UTC).isoformat()
    with emit.hub.subscribe("space", SPACE) as space:
        job_id = await create(http, scheduledFor=at)
        streamed = [space.queue.get_nowait()[1] for _ in range(space.queue.qsize())]
    assert [(e.type, e.status, e.data) for e in streamed] == [
        ("created", "scheduled", {"name": "task", "scheduledFor": "2026-01-01T00:01:00.000Z"}),
        ("scheduled", "scheduled", {"scheduledFor": "2026-01-01T00:01:00.000Z"}),
    ]
    document = await job(http, job_id)
    assert event_types(document) == ["created", "scheduled"]
    assert event_types(await job(http, await create(http))) == ["created"]  # not when due now


async def test_progress_without_sub_progress_stores_null(http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    await start(http, job_id)
    assert (await call(http, job_id, "progress", {"percent": 5, "message": "m"})).status_code == 200
    view = (await http.get(f"/jobs/{job_id}/progress")).json()
    assert view["progress"] == {
        "percent": 5,
        "message": "m",
        "subProgress": None,
        "updatedAt": "2026-01-01T00:00:00.000Z",
    }
    event = (await job(http, job_id))["events"][-1]
    assert (event["type"], event["data"]) == (
        "progress",
        {"percent": 5, "message": "m", "subProgress": None},
    )
