"""Contract §6: ``job.pending`` pushes on every entry into pending, off the request path."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from emit_push.server import EmitServer, ManualClock, ServerConfig
from tests.conftest import SPACE, make_config
from tests.receiver import Receiver
from tests.server.conftest import call, create, job, start


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
    assert events[-1]["data"] == {"url": url, "statusCode": 200}
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
    assert (await job(http, job_id))["status"] == "pending"  # best effort: the job waits


async def test_non_2xx_answers_are_ignored_but_recorded(
    emit: EmitServer, http: httpx.AsyncClient
) -> None:
    failing = Receiver(statuses=[500])
    try:
        await configure(http, failing.url)
        job_id = await create(http)
        await failing.wait_for(1)
        await settled(emit)
        event = (await job(http, job_id))["events"][-1]
        assert (event["type"], event["data"]["statusCode"]) == ("push_sent", 500)
        assert len(failing.requests) == 1  # one attempt only
    finally:
        failing.stop()


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
