"""Contract §8 over real uvicorn: the job and space WebSocket streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from emit_push.server import KeySpec
from tests.conftest import (
    ADMIN_KEY,
    OTHER_KEY,
    PROGRESS_TOKEN,
    SPACE,
    WORKER_KEY,
    LiveServer,
    make_config,
)

CREATE_ONLY_KEY = "emit_test_create_only"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    base = make_config()
    server = LiveServer(
        make_config(
            db_path=str(tmp_path / "emit.sqlite3"),
            api_keys=[*base.api_keys, KeySpec(CREATE_ONLY_KEY, ["jobs:create"])],
        )
    )
    yield server
    server.stop()


@pytest.fixture
async def http(live: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with live.client() as client:
        yield client


async def create(http: httpx.AsyncClient, **spec: Any) -> str:
    response = await http.post(f"/spaces/{SPACE}/jobs", json={"name": "task", **spec})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def recv(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), 10))  # type: ignore[no-any-return]


async def drain(ws: ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    """Every message until the server closes, and the close code."""
    messages = []
    try:
        while True:
            messages.append(await recv(ws))
    except ConnectionClosed:
        pass
    return messages, ws.close_code


async def run_job(http: httpx.AsyncClient, job_id: str) -> None:
    for action, body in [
        ("claim", None),
        ("ack", None),
        ("progress", {"percent": 50, "message": "half", "subProgress": {"a": {"percent": 10}}}),
        ("checkpoint", {"offset": 7}),
        ("event", {"kind": "note"}),
        ("complete", {"result": {"done": True}}),
    ]:
        if action == "checkpoint":
            logs = b'{"level":"info","message":"a"}\n{"level":"warn","message":"b"}\n'
            assert (await http.post(f"/jobs/{job_id}/logs", content=logs)).status_code == 200
        assert (await http.post(f"/jobs/{job_id}/{action}", json=body)).status_code == 200


async def test_full_view_sees_every_event_then_close_1000(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    job_id = await create(http, payload={"n": 1})
    async with connect(f"{live.ws_url}/realtime/{job_id}?token={ADMIN_KEY}") as ws:
        init = await recv(ws)
        assert (init["type"], init["jobId"], init["status"]) == ("init", job_id, "pending")
        assert init["data"]["payload"] == {"n": 1}
        await run_job(http, job_id)
        messages, code = await drain(ws)
    assert code == 1000
    assert [m["type"] for m in messages] == [
        "delivered", "running", "progress", "logs", "checkpoint", "event", "completed",
    ]  # fmt: skip
    by_type = {m["type"]: m for m in messages}
    assert by_type["progress"]["data"] == {
        "percent": 50,
        "message": "half",
        "subProgress": {"a": {"percent": 10}},
    }
    assert by_type["logs"]["data"] == {"fromSeq": 1, "toSeq": 2, "count": 2}
    assert by_type["completed"] == {
        "type": "completed",
        "jobId": job_id,
        "status": "completed",
        "data": {"done": True},
        "timestamp": by_type["completed"]["timestamp"],
    }


@pytest.mark.parametrize("how", ["anonymous", "token query", "key header"])
async def test_progress_only_view(live: LiveServer, http: httpx.AsyncClient, how: str) -> None:
    job_id = await create(http)
    url = f"{live.ws_url}/realtime/{job_id}"
    headers = {}
    if how == "token query":
        url += f"?token={PROGRESS_TOKEN}"
    elif how == "key header":
        headers["x-api-key"] = PROGRESS_TOKEN
    async with connect(url, additional_headers=headers) as ws:
        init = await recv(ws)
        assert (init["type"], init["status"], init["data"]) == (
            "init",
            "pending",
            {"progress": None},
        )
        await run_job(http, job_id)
        messages, code = await drain(ws)
    assert code == 1000
    assert [(m["type"], m["data"]) for m in messages] == [
        ("progress", {"percent": 50, "message": "half", "subProgress": {"a": {"percent": 10}}}),
        ("completed", None),
    ]


async def test_full_view_with_a_bearer_header(live: LiveServer, http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    headers = {"Authorization": f"Bearer {WORKER_KEY}"}
    async with connect(f"{live.ws_url}/realtime/{job_id}", additional_headers=headers) as ws:
        assert (await recv(ws))["data"]["id"] == job_id  # the whole job: a full view
        await http.post(f"/jobs/{job_id}/kill", json={"reason": "r"})
        messages, code = await drain(ws)
    assert ([m["type"] for m in messages], code) == (["killed"], 1000)
    assert messages[0]["data"] == {"reason": "r"}


async def test_progress_only_viewers_of_a_dying_job_see_the_close(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    job_id = await create(http, maxRetries=0)
    async with connect(f"{live.ws_url}/realtime/{job_id}") as ws:
        await recv(ws)
        for action, body in [("claim", None), ("ack", None), ("fail", {"error": "x"})]:
            await http.post(f"/jobs/{job_id}/{action}", json=body)
        assert await drain(ws) == ([], 1000)


async def test_finished_job_sends_init_and_closes(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    job_id = await create(http)
    await run_job(http, job_id)
    async with connect(f"{live.ws_url}/realtime/{job_id}?token={ADMIN_KEY}") as ws:
        messages, code = await drain(ws)
    assert [(m["type"], m["status"]) for m in messages] == [("init", "completed")]
    assert messages[0]["data"]["result"] == {"done": True}
    assert code == 1000


@pytest.mark.parametrize(
    ("path", "query", "code"),
    [
        ("/realtime/{missing}", "", 4404),
        ("/realtime/{job}", "?token=emit_wrong", 4401),
        ("/realtime/{job}", f"?token={OTHER_KEY}", 4403),
        ("/realtime/{job}", f"?token={CREATE_ONLY_KEY}", 4403),
        ("/realtime/spaces/{space}", "", 4401),
        ("/realtime/spaces/{space}", "?token=emit_wrong", 4401),
        ("/realtime/spaces/{space}", f"?token={PROGRESS_TOKEN}", 4403),
        ("/realtime/spaces/{space}", f"?token={OTHER_KEY}", 4403),
        ("/realtime/spaces/{space}", f"?token={ADMIN_KEY}&since=-1", 4400),
    ],
)
async def test_stream_errors_close_with_contract_codes(
    live: LiveServer, http: httpx.AsyncClient, path: str, query: str, code: int
) -> None:
    job_id = await create(http)
    url = live.ws_url + path.format(missing="01JNOSUCHJOB", job=job_id, space=SPACE) + query
    async with connect(url) as ws:
        assert await drain(ws) == ([], code)


async def test_space_stream_counts_seq_and_job_names(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    await create(http)  # one pending job before we connect
    async with connect(f"{live.ws_url}/realtime/spaces/{SPACE}?token={ADMIN_KEY}") as ws:
        hello = await recv(ws)
        assert hello["type"] == "connected"
        assert hello["missed"] is False
        assert hello["counts"] == {
            "scheduled": 0, "pending": 1, "delivered": 0, "running": 0,
            "completed": 0, "dead": 0, "killed": 0,
        }  # fmt: skip
        job_id = await create(http, name="email")
        await http.post(f"/jobs/{job_id}/claim")
        events = [await recv(ws), await recv(ws)]
    start = hello["seq"]
    assert [(e["type"], e["jobName"], e["seq"], e["jobId"]) for e in events] == [
        ("created", "email", start + 1, job_id),
        ("delivered", "email", start + 2, job_id),
    ]


async def test_space_cursor_and_missed_across_a_restart(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    stream = f"{live.ws_url}/realtime/spaces/{SPACE}?token={ADMIN_KEY}"
    async with connect(stream) as ws:
        hello = await recv(ws)
        await create(http)
        seq = (await recv(ws))["seq"]
    instance = hello["streamInstanceId"]
    async with connect(f"{stream}&since={seq}&streamInstanceId={instance}") as ws:
        assert (await recv(ws))["missed"] is False  # nothing happened in between
    await create(http)
    async with connect(f"{stream}&since={seq}&streamInstanceId={instance}") as ws:
        assert (await recv(ws))["missed"] is True  # one event went by unseen
    async with connect(stream) as ws:
        await recv(ws)
        live.restart()
        assert (await drain(ws))[1] in {1001, 1012}  # going away / service restart
    async with connect(f"{stream}&since={seq + 1}&streamInstanceId={instance}") as ws:
        hello = await recv(ws)
    assert hello["missed"] is True
    assert hello["streamInstanceId"] != instance
    assert hello["counts"]["pending"] == 2  # nothing was lost: re-read over HTTP


async def test_timers_fire_on_the_real_clock(live: LiveServer, http: httpx.AsyncClient) -> None:
    job_id = await create(http, timeoutSeconds=1)
    async with connect(f"{live.ws_url}/realtime/{job_id}?token={ADMIN_KEY}") as ws:
        await recv(ws)
        await http.post(f"/jobs/{job_id}/claim")
        assert (await recv(ws))["type"] == "delivered"
        reverted = await recv(ws)  # about a second later, no ack came
    assert (reverted["type"], reverted["data"]) == ("pending", {"reason": "delivery_timeout"})
