"""The local-server calls the dashboard reads (``_local_api``, DECIDED): the space, jobs by
name, the last push deliveries, and re-push."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emit_push.server import EmitServer, ServerConfig
from tests.conftest import (
    ADMIN_KEY,
    OTHER_KEY,
    OTHER_SPACE,
    PRODUCER_KEY,
    PROGRESS_TOKEN,
    SPACE,
    WORKER_KEY,
    client_for,
    make_config,
)
from tests.receiver import Receiver
from tests.server.conftest import LocalResolver, call, create, start


@pytest.fixture
def server_config() -> ServerConfig:
    return make_config(resolver=LocalResolver(), push_retry_delays=())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver([500])  # the first push fails, the others are answered 200
    yield receiver
    receiver.stop()


async def settled(emit: EmitServer) -> None:
    """Every push queued so far has been sent and recorded."""
    emit.scheduler.run_due()
    await emit.scheduler.in_flight()


async def test_the_space(emit: EmitServer, http: httpx.AsyncClient) -> None:
    for name in ("resize", "email", "resize", "zip"):
        await create(http, name)
    job_id = await create(http, "email")
    await start(http, job_id)
    space = (await http.get(f"/spaces/{SPACE}")).json()
    assert space["id"] == SPACE
    assert space["createdAt"].endswith("Z")
    assert space["counts"] == {
        "scheduled": 0, "pending": 4, "delivered": 0, "running": 1,
        "completed": 0, "dead": 0, "killed": 0,
    }  # fmt: skip
    assert space["names"] == ["email", "resize", "zip"]
    keys = {key["name"]: key for key in space["keys"]}
    assert set(keys) == {"worker", "producer", "progress", "admin"}  # not the other space's
    assert keys["worker"]["scopes"] == ["jobs:worker"]
    assert keys["progress"]["key"] == "emit_test…oken"
    shown = str(space)
    for key in (WORKER_KEY, PRODUCER_KEY, PROGRESS_TOKEN, ADMIN_KEY):
        assert key not in shown

    emit.dashboard.key()  # once the page has its key, it is listed too, masked
    space = (await http.get(f"/spaces/{SPACE}")).json()
    page_key = space["keys"][-1]
    assert page_key["name"] == "dashboard"
    assert page_key["inMemory"] is True
    assert page_key["key"].startswith("emit_dash")
    assert "…" in page_key["key"]
    assert emit.dashboard.key() not in str(space)


@pytest.mark.parametrize(
    ("key", "path", "status"),
    [
        (WORKER_KEY, "", 403),  # space:admin
        (OTHER_KEY, "", 403),  # another space's key
        (None, "", 401),
        (PROGRESS_TOKEN, "/jobs/search?name=a", 403),  # jobs:read
        (WORKER_KEY, "/jobs/search?name=a", 200),
        (WORKER_KEY, "/deliveries", 403),
    ],
)
async def test_scopes(emit: EmitServer, key: str | None, path: str, status: int) -> None:
    async with client_for(emit, key) as http:
        assert (await http.get(f"/spaces/{SPACE}{path}")).status_code == status
    async with client_for(emit, OTHER_KEY) as http:
        assert (await http.get(f"/spaces/{OTHER_SPACE}")).status_code == 200


async def test_jobs_by_name(http: httpx.AsyncClient) -> None:
    ids = [await create(http, "a" if i % 2 else "b") for i in range(9)]  # a: 1, 3, 5, 7
    await start(http, ids[5])

    async def search(**params: Any) -> list[str]:
        response = await http.get(f"/spaces/{SPACE}/jobs/search", params=params)
        assert response.status_code == 200, response.text
        return [job["id"] for job in response.json()]

    assert await search(name="a") == [ids[7], ids[5], ids[3], ids[1]]  # newest first
    assert await search(name="a", status="pending") == [ids[7], ids[3], ids[1]]
    assert await search(name="a", status="running") == [ids[5]]
    assert await search(name="a", limit=2) == [ids[7], ids[5]]
    assert await search(name="a", limit=2, before=ids[5]) == [ids[3], ids[1]]
    assert await search(name="a", status="pending", before=ids[3]) == [ids[1]]
    assert await search(name="nobody") == []
    whole = (await http.get(f"/spaces/{SPACE}/jobs/search", params={"name": "b"})).json()
    listed = (await http.get(f"/spaces/{SPACE}/jobs")).json()
    assert whole == [job for job in listed if job["name"] == "b"]  # the same documents

    for params, message in [
        ({}, "name: required"),
        ({"name": "a", "status": "lost"}, "status: must be one of"),
        ({"name": "a", "before": "01NOPE"}, "before: no job of this space"),
        ({"name": "a", "limit": "0"}, "limit: must be at least 1"),
    ]:
        response = await http.get(f"/spaces/{SPACE}/jobs/search", params=params)
        assert response.status_code == 400
        assert message in response.json()["error"]


async def test_deliveries_and_repush(
    emit: EmitServer, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    async def repush(body: Any) -> httpx.Response:
        return await http.post(f"/spaces/{SPACE}/repush", json=body)

    off = await repush({})
    assert (off.status_code, off.json()["code"]) == (409, "push_off")
    settings = {"url": f"{receiver.url}/emit", "jobNames": ["resize"]}
    assert (await http.put(f"/spaces/{SPACE}/push", json=settings)).status_code == 200
    job_id = await create(http, "resize")
    other = await create(http, "email")  # not pushed: jobNames
    await settled(emit)
    assert (await repush({"jobIds": [job_id]})).json() == {"queued": 1}
    await settled(emit)
    assert [r.json()["jobId"] for r in await receiver.wait_for(2)] == [job_id, job_id]

    deliveries = (await http.get(f"/spaces/{SPACE}/deliveries")).json()["deliveries"]
    assert [(d["jobId"], d["jobName"], d["type"]) for d in deliveries] == [
        (job_id, "resize", "push_sent"),
        (job_id, "resize", "push_failed"),
    ]
    failed = deliveries[1]
    assert failed["data"]["statusCode"] == 500
    assert failed["data"]["error"] == "HTTP 500"
    assert failed["data"]["willRetry"] is False
    assert failed["attemptNumber"] == 0
    one = await http.get(f"/spaces/{SPACE}/deliveries", params={"limit": 1})
    assert [d["type"] for d in one.json()["deliveries"]] == ["push_sent"]

    assert (await repush({})).json() == {"queued": 1}  # every pending job it pushes
    await settled(emit)
    assert len(await receiver.wait_for(3)) == 3

    refused = await repush({"jobIds": [other]})  # a name the settings leave out
    assert (refused.status_code, refused.json()["code"]) == (409, "invalid_state")
    await start(http, job_id)
    busy = await repush({"jobIds": [job_id]})
    assert (busy.status_code, busy.json()["code"]) == (409, "invalid_state")
    assert (await repush({"jobIds": ["01UNKNOWN"]})).status_code == 404
    for body in ({"jobIds": []}, {"jobIds": [1]}, {"jobIds": "x"}, [job_id]):
        assert (await repush(body)).status_code == 400
    async with client_for(emit, WORKER_KEY) as worker:
        assert (await worker.post(f"/spaces/{SPACE}/repush", json={})).status_code == 403
    await call(http, job_id, "complete")
    assert len(receiver.requests) == 3
