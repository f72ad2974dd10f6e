"""Contract §6: ``job.pending`` pushes on every entry into pending, off the request path;
and (DECIDED, README) sent again with backoff while the job waits, when one failed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emit_push.server import EmitServer, ManualClock, ServerConfig
from tests.conftest import ADMIN_KEY, SPACE, ServeThread, client_for, make_config
from tests.receiver import Receiver
from tests.server.conftest import Deliveries, call, create, job, start


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def server_config(clock: ManualClock) -> ServerConfig:
    return make_config(clock=clock)


async def configure(http: httpx.AsyncClient, url: str, **settings: object) -> dict[str, object]:
    response = await http.put(f"/spaces/{SPACE}/push", json={"url": url, **settings})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def settled(emit: EmitServer) -> None:
    """Every push started so far has been sent and recorded."""
    emit.scheduler.run_due()
    await emit.scheduler.in_flight()


async def test_push_body_headers_and_event(
    emit: EmitServer, http: httpx.AsyncClient, receiver: Receiver, clock: ManualClock
) -> None:
    url = f"{receiver.url}/emit/push"
    settings = await configure(
        http, url, headers={"Authorization": "Bearer s3cret", "X-Env": "dev"}
    )
    assert settings == {
        "url": url,
        "headers": {"Authorization": "Bearer s3cret", "X-Env": "dev"},
        "jobNames": None,
    }
    assert (await http.get(f"/spaces/{SPACE}/push")).json() == settings
    job_id = await create(http, "email")
    [push] = await receiver.wait_for(1)
    assert (push.method, push.path) == ("POST", "/emit/push")
    assert push.headers["content-type"] == "application/json"
    assert push.headers["user-agent"] == "emit.run/1.0"
    assert push.headers["authorization"] == "Bearer s3cret"
    assert push.headers["x-env"] == "dev"
    document = await job(http, job_id)
    assert push.json() == {
        "type": "job.pending",
        "jobId": job_id,
        "spaceId": SPACE,
        "name": "email",
        "attemptNumber": 0,
        "timestamp": document["createdAt"],  # sent on entry into pending: at creation
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", push.json()["timestamp"])
    await settled(emit)
    events = (await job(http, job_id))["events"]
    assert events[-1]["type"] == "push_sent"
    assert events[-1]["data"] == {
        "url": url,
        "statusCode": 200,
        "retryAttempt": 0,
        "willRetry": False,
        "error": None,
    }
    assert "s3cret" not in str(events)


async def test_every_entry_into_pending_pushes(
    emit: EmitServer, http: httpx.AsyncClient, receiver: Receiver, clock: ManualClock
) -> None:
    await configure(http, receiver.url)
    job_id = await create(http, timeoutSeconds=5, maxRetries=3)  # push 1: created
    await receiver.wait_for(1)
    await start(http, job_id)
    await call(http, job_id, "fail", {"error": "x"})  # push 2: retry
    await receiver.wait_for(2)
    await call(http, job_id, "claim")
    clock.advance(5)  # push 3: delivery timeout
    emit.scheduler.run_due()
    await receiver.wait_for(3)
    await start(http, job_id)
    clock.advance(5)  # push 4: execution timeout → retry
    emit.scheduler.run_due()
    pushes = await receiver.wait_for(4)
    assert [p.json()["attemptNumber"] for p in pushes] == [0, 1, 1, 2]
    at = "2099-01-01T00:00:00Z"
    scheduled = await create(http, scheduledFor=at)  # no push while scheduled
    await settled(emit)
    assert len(receiver.requests) == 4
    clock.advance((4_070_908_800_000 - clock.now_ms()) / 1000)  # 2099-01-01
    emit.scheduler.run_due()
    pushes = await receiver.wait_for(5)
    assert pushes[-1].json()["jobId"] == scheduled


async def test_job_name_filter(
    emit: EmitServer, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    settings = await configure(http, receiver.url, jobNames=["email", "sms"])
    assert settings["jobNames"] == ["email", "sms"]
    await create(http, "resize")
    wanted = await create(http, "sms")
    await settled(emit)
    pushes = await receiver.wait_for(1)
    assert [p.json()["jobId"] for p in pushes] == [wanted]


async def test_pending_jobs_are_pushed_again_to_the_names_pushed(
    emit: EmitServer, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    """What ``emit-push dev`` asks when the app is back: the pending jobs it takes."""
    greet = await create(http, "greet")
    resize = await create(http, "resize")  # both pending: no push was set up yet
    await configure(http, receiver.url, jobNames=["greet"])
    assert emit.engine.repush_pending(SPACE) == 1
    await configure(http, receiver.url)  # a catch-all handler takes them all
    assert emit.engine.repush_pending(SPACE) == 2
    await settled(emit)
    pushes = await receiver.wait_for(3)
    assert sorted(p.json()["jobId"] for p in pushes) == sorted([greet, greet, resize])
    await configure(http, "")  # push off: nothing to push to
    assert emit.engine.repush_pending(SPACE) == 0


async def test_push_off_and_on(
    emit: EmitServer, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    await configure(http, receiver.url)
    await configure(http, "")
    assert (await http.get(f"/spaces/{SPACE}/push")).json()["url"] is None
    await create(http)
    await settled(emit)
    assert receiver.requests == []


async def test_unreachable_endpoint_is_recorded_as_push_failed(
    emit: EmitServer, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.stop()  # nothing listens there now
    await configure(http, receiver.url)
    job_id = await create(http)
    await settled(emit)
    event = (await job(http, job_id))["events"][-1]
    assert event["type"] == "push_failed"
    assert event["data"]["url"] == receiver.url
    assert "ConnectError" in event["data"]["error"]
    assert "could not be reached" in event["data"]["hint"]
    assert (await job(http, job_id))["status"] == "pending"  # best effort: the job waits


async def test_a_failed_push_is_sent_again_with_backoff_until_answered(
    emit: EmitServer, http: httpx.AsyncClient, clock: ManualClock, deliveries: Deliveries
) -> None:
    """DECIDED (README): a push not answered 2xx (5xx, 401, a redirect...) is sent again,
    1 s, 2 s, 4 s... later (``push_retry_delays``), while the job is pending."""
    failing = Receiver(statuses=[500, 401, 307])
    try:
        await configure(http, failing.url)
        job_id = await create(http)
        for attempt, delay in enumerate([1, 2, 4], start=1):
            await deliveries.wait_for(attempt, "push_failed", job_id=job_id)
            [row] = emit.store.conn.execute("SELECT attempt, due_at FROM outbox").fetchall()
            assert (row["attempt"], row["due_at"]) == (attempt, clock.now_ms() + delay * 1000)
            clock.advance(delay)
        await deliveries.wait_for(1, "push_sent", job_id=job_id)
        pushes = await failing.wait_for(4)
    finally:
        failing.stop()
    assert len({p.body for p in pushes}) == 1  # the same job.pending push each time
    events = [e for e in (await job(http, job_id))["events"] if e["type"].startswith("push_")]
    hints = [e["data"].pop("hint", None) for e in events]
    assert [(e["type"], e["data"]) for e in events] == [
        ("push_failed", {"url": failing.url, "statusCode": 500, "retryAttempt": 0,
                         "willRetry": True, "error": "HTTP 500"}),
        ("push_failed", {"url": failing.url, "statusCode": 401, "retryAttempt": 1,
                         "willRetry": True, "error": "HTTP 401"}),
        ("push_failed", {"url": failing.url, "statusCode": 307, "retryAttempt": 2,
                         "willRetry": True, "error": "HTTP 307"}),
        ("push_sent", {"url": failing.url, "statusCode": 200, "retryAttempt": 3,
                       "willRetry": False, "error": None}),
    ]  # fmt: skip
    assert emit.store.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    # Each failure says what most likely fixes it (issue 11): the app's log, the secret,
    # the trailing slash of a mount.
    assert hints[3] is None
    assert "see its log" in hints[0]
    assert "EMIT_PUSH_SECRET" in hints[1]
    assert "trailing slash" in hints[2]


async def test_a_lost_push_costs_a_delay_not_the_job(
    emit: EmitServer, http: httpx.AsyncClient, clock: ManualClock, deliveries: Deliveries
) -> None:
    """Nothing listens when the job is created (an app restarting): the push is sent again
    once something does, and the job is taken."""
    gone = Receiver()
    port = gone.port
    gone.stop()
    await configure(http, gone.url)
    job_id = await create(http)
    [failed] = await deliveries.wait_for(1, "push_failed", job_id=job_id)
    assert failed.data["error"].startswith("ConnectError")  # the admin's URL: told in full
    assert failed.data["willRetry"] is True
    back = Receiver(port=port)
    try:
        clock.advance(1)
        [push] = await back.wait_for(1)
    finally:
        back.stop()
    assert push.json()["jobId"] == job_id


async def test_pushes_stop_once_the_job_is_no_longer_pending(
    emit: EmitServer, http: httpx.AsyncClient, clock: ManualClock, deliveries: Deliveries
) -> None:
    failing = Receiver(statuses=[503, 503])
    try:
        await configure(http, failing.url)
        job_id = await create(http)
        await deliveries.wait_for(1, "push_failed", job_id=job_id)
        await call(http, job_id, "claim")  # a polling worker took it meanwhile
        clock.advance(1)
        await settled(emit)
        assert emit.store.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
        # Back to pending by a failed attempt: that entry pushes anew, once answered.
        await call(http, job_id, "ack")
        await call(http, job_id, "fail", {"error": "again"})
        await deliveries.wait_for(2, "push_failed", job_id=job_id)
        clock.advance(1)
        await deliveries.wait_for(1, "push_sent", job_id=job_id)
        pushes = await failing.wait_for(3)
    finally:
        failing.stop()
    assert [p.json()["attemptNumber"] for p in pushes] == [0, 1, 1]


async def test_retries_end_after_the_last_delay(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = Receiver(statuses=[500] * 10)
    try:
        async with EmitServer(make_config(clock=clock, push_retry_delays=(1, 1))) as short:
            short_deliveries = Deliveries(short, monkeypatch)
            async with client_for(short, ADMIN_KEY) as admin:
                await configure(admin, failing.url)
                job_id = await create(admin)
                for count in (1, 2):
                    await short_deliveries.wait_for(count, "push_failed", job_id=job_id)
                    clock.advance(1)
                records = await short_deliveries.wait_for(3, "push_failed", job_id=job_id)
                await settled(short)
                outbox = short.store.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    finally:
        failing.stop()
    assert [r.data["willRetry"] for r in records] == [True, True, False]
    assert outbox == 0
    assert len(failing.requests) == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"url": "ftp://x"}, "url: must be an http(s) URL"),
        ({"url": "http://x", "headers": {"a": 1}}, "headers.a: must be a string"),
        ({"url": "http://x", "jobNames": [""]}, "jobNames.0: must not be empty"),
        (
            {"url": "http://x", "job_names": []},
            "job_names: is not a known field (did you mean 'jobNames'?)",
        ),
        ({"url": "http://127.0.0.1:99999/p"}, "url: port must be between 1 and 65535"),
        ({"url": "https:///x"}, "url: must name a host"),
        ({"url": "http://x", "headers": {"X-Push-Secret": "hunter2-é"}},
         "headers.X-Push-Secret: must be visible ASCII (inner spaces allowed), without control"
         " characters or surrounding whitespace"),
        ({"url": "http://x", "headers": {"X-Push-Secret": "hunter2\n"}},
         "headers.X-Push-Secret: must be visible ASCII (inner spaces allowed), without control"
         " characters or surrounding whitespace"),
        ({"url": "http://x", "headers": {"X:Y": "v"}},
         "headers: 'X:Y' is not a valid header name (an RFC 7230 token)"),
        ({"url": "http://x", "headers": {f"X-{n}": "v" for n in range(65)}}, "headers: at most 64 headers"),
    ],
)  # fmt: skip
async def test_push_settings_validation(
    http: httpx.AsyncClient, body: dict[str, object], message: str
) -> None:
    response = await http.put(f"/spaces/{SPACE}/push", json=body)
    assert (response.status_code, response.json()["error"]) == (400, message)


async def test_push_settings_are_unchanged_by_a_refused_update(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    settings = await configure(http, receiver.url, headers={"X-Push-Secret": "hunter2"})
    response = await http.put(
        f"/spaces/{SPACE}/push", json={"url": receiver.url, "headers": {"X-Push-Secret": "é"}}
    )
    assert response.status_code == 400
    assert (await http.get(f"/spaces/{SPACE}/push")).json() == settings


async def test_an_empty_job_name_list_means_no_filter(
    emit: EmitServer, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    """DECIDED (README): ``jobNames: []`` is no filter, like null, and is answered as null."""
    settings = await configure(http, receiver.url, jobNames=[])
    assert settings["jobNames"] is None
    assert (await http.get(f"/spaces/{SPACE}/push")).json()["jobNames"] is None
    job_id = await create(http, "anything")
    [push] = await receiver.wait_for(1)
    assert push.json()["jobId"] == job_id


async def test_a_refused_push_keeps_the_apps_reason_bounded_and_redacted(
    emit: EmitServer, http: httpx.AsyncClient, deliveries: Deliveries
) -> None:
    """The ``error`` of a JSON answer is kept (its first line, 300 characters at most),
    the push headers' values redacted from it; any other answer gives no reason."""
    secret = "Bearer s3cret-push-token"
    answers = [
        (500, json.dumps({"error": f"broken: {secret} " + "x" * 400 + "\nmore", "code": "c"})),
        (502, "<html>Bad gateway</html>"),
        (500, json.dumps({"error": "a" * 5000})[:3000]),  # cut short: no JSON
    ]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        status, body = answers.pop(0)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body.encode()})

    served = ServeThread(app)
    try:
        await configure(http, served.url, headers={"Authorization": secret})
        job_ids = []
        for count in (1, 2, 3):  # one at a time: each push gets its answer
            job_ids.append(await create(http))
            await deliveries.wait_for(count, "push_failed")
    finally:
        served.stop()
    data = [(await job(http, j))["events"][-1]["data"] for j in job_ids]
    assert data[0]["answer"] == "broken: [redacted] " + "x" * 278 + "..."
    assert data[0]["hint"] == f"the app answered: {data[0]['answer']}"
    assert "answer" not in data[1]
    assert "see its log" in data[1]["hint"]
    assert "answer" not in data[2]
