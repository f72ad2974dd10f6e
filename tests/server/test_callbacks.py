"""Contract §7: callbacks on completed, dead and killed, with retries and recorded events."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from emit_push.server import EmitServer
from tests.conftest import SPACE
from tests.receiver import Receiver
from tests.server.conftest import Deliveries, call, create, job, start


def callback_events(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in document["events"] if e["type"].startswith("callback_")]


async def finished(deliveries: Deliveries, http: httpx.AsyncClient, job_id: str, count: int) -> Any:
    """The job once ``count`` callback attempts have been recorded (retries come soon)."""
    await deliveries.wait_for(count, "callback_sent", "callback_failed", job_id=job_id)
    return await job(http, job_id)


async def test_fails_twice_then_succeeds(http: httpx.AsyncClient, deliveries: Deliveries) -> None:
    receiver = Receiver(statuses=[500, 503])
    try:
        url = f"{receiver.url}/hooks/done"
        job_id = await create(http, "report", callbackUrl=url, callbackHeaders={"X-Sig": "abc"})
        await start(http, job_id)
        await call(http, job_id, "complete", {"result": {"rows": 3}})
        requests = await receiver.wait_for(3)
        document = await finished(deliveries, http, job_id, 3)
    finally:
        receiver.stop()
    assert len(requests) == 3
    body = requests[0].json()
    assert body == {
        "jobId": job_id,
        "spaceId": SPACE,
        "name": "report",
        "status": "completed",
        "attemptNumber": 0,
        "result": {"rows": 3},
        "timestamp": document["completedAt"],
    }
    assert all(r.json() == body for r in requests)
    headers = requests[0].headers
    assert (headers["x-sig"], headers["user-agent"]) == ("abc", "emit.run/1.0")
    assert headers["content-type"] == "application/json"
    assert [(e["type"], e["data"]) for e in callback_events(document)] == [
        (
            "callback_failed",
            {
                "url": url,
                "retryAttempt": 0,
                "statusCode": 500,
                "error": "HTTP 500",
                "willRetry": True,
            },
        ),
        (
            "callback_failed",
            {
                "url": url,
                "retryAttempt": 1,
                "statusCode": 503,
                "error": "HTTP 503",
                "willRetry": True,
            },
        ),
        (
            "callback_sent",
            {
                "url": url,
                "retryAttempt": 2,
                "statusCode": 200,
                "willRetry": False,
                "error": None,
            },
        ),
    ]


async def test_gives_up_after_three_retries(
    http: httpx.AsyncClient, deliveries: Deliveries
) -> None:
    receiver = Receiver(statuses=[500, 500, 500, 201])  # only 200 counts as delivered
    try:
        job_id = await create(http, callbackUrl=receiver.url)
        await call(http, job_id, "kill", {"reason": "obsolete"})
        requests = await receiver.wait_for(4)
        document = await finished(deliveries, http, job_id, 4)
    finally:
        receiver.stop()
    assert requests[0].json()["result"] == {"reason": "obsolete"}
    assert requests[0].json()["status"] == "killed"
    events = callback_events(document)
    assert [e["data"]["willRetry"] for e in events] == [True, True, True, False]
    assert events[-1]["data"]["statusCode"] == 201
    assert len(receiver.requests) == 4


async def test_dead_jobs_call_back_with_the_error(
    http: httpx.AsyncClient, deliveries: Deliveries
) -> None:
    receiver = Receiver()
    try:
        job_id = await create(http, maxRetries=0, callbackUrl=receiver.url)
        await start(http, job_id)
        await call(http, job_id, "fail", {"error": "out of memory"})
        [request] = await receiver.wait_for(1)
        await finished(deliveries, http, job_id, 1)
    finally:
        receiver.stop()
    assert (request.json()["status"], request.json()["result"]) == (
        "dead",
        {"error": "out of memory"},
    )


async def test_unreachable_callback_is_retried_and_recorded(
    http: httpx.AsyncClient, deliveries: Deliveries
) -> None:
    receiver = Receiver()
    receiver.stop()
    job_id = await create(http, callbackUrl=receiver.url)
    await call(http, job_id, "kill")
    document = await finished(deliveries, http, job_id, 4)
    events = callback_events(document)
    assert [e["data"]["retryAttempt"] for e in events] == [0, 1, 2, 3]
    assert all(e["data"]["statusCode"] is None for e in events)
    # A fixed phrase: not the OS's words (refused, reset, the address), see test_egress.
    assert {e["data"]["error"] for e in events} == {"could not connect"}


async def test_no_callback_without_url_or_before_the_end(
    emit: EmitServer, http: httpx.AsyncClient
) -> None:
    receiver = Receiver()
    try:
        plain = await create(http)
        await start(http, plain)
        await call(http, plain, "complete")
        retried = await create(http, callbackUrl=receiver.url)
        await start(http, retried)
        await call(http, retried, "fail", {"error": "again"})  # retried: not terminal
        emit.scheduler.run_due()
        await emit.scheduler.in_flight()
        assert receiver.requests == []
    finally:
        receiver.stop()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"callbackUrl": "http://127.0.0.1:99999/cb"},
         "callbackUrl: port must be between 1 and 65535"),
        ({"callbackUrl": "http://127.0.0.1:0/cb"}, "callbackUrl: port must be between 1 and 65535"),
        ({"callbackUrl": "http:///cb"}, "callbackUrl: must name a host"),
        ({"callbackUrl": "http://%zz/cb"}, "callbackUrl: must name a valid host"),
        ({"callbackUrl": "ftp://host/cb"}, "callbackUrl: must be an http(s) URL"),
        ({"callbackUrl": "http://h/" + "a" * 2048}, "callbackUrl: must be at most 2048 characters"),
        ({"callbackHeaders": {"X-Sig": "s3cret-é"}}, "callbackHeaders.X-Sig: must be visible ASCII"),
        ({"callbackHeaders": {"X-Sig": "s3cret\r\nInjected: 1"}}, "callbackHeaders.X-Sig: must be visible ASCII"),
        ({"callbackHeaders": {"X-Sig": "s3cret\u0000"}}, "callbackHeaders.X-Sig: must be visible ASCII"),
        ({"callbackHeaders": {"X-Sig": " s3cret"}}, "callbackHeaders.X-Sig: must be visible ASCII"),
        ({"callbackHeaders": {"X Sig": "v"}},
         "callbackHeaders: 'X Sig' is not a valid header name (an RFC 7230 token)"),
        ({"callbackHeaders": {"": "v"}}, "callbackHeaders: '' is not a valid header name"),
        ({"callbackHeaders": {"Content-Length": "1"}}, "callbackHeaders.Content-Length: is set by the server"),
    ],
)  # fmt: skip
async def test_unsendable_callback_settings_are_refused(
    http: httpx.AsyncClient, spec: dict[str, Any], message: str
) -> None:
    spec = {"callbackUrl": "http://127.0.0.1:9/cb", **spec}
    response = await http.post(f"/spaces/{SPACE}/jobs", json=[{"name": "a", **spec}])
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"[0].{message}")
    assert "s3cret" not in response.json()["error"]  # a header value is never quoted back


async def test_sendable_callback_settings_are_kept(http: httpx.AsyncClient) -> None:
    spec = {
        "callbackUrl": "https://user@[::1]:8443/hooks/done?x=1",
        "callbackHeaders": {"Authorization": "Bearer a.b-c", "X-Empty": "", "X-In": "a  b\tc"},
    }
    document = await job(http, await create(http, **spec))
    assert (document["callbackUrl"], document["callbackHeaders"]) == (
        spec["callbackUrl"],
        spec["callbackHeaders"],
    )
