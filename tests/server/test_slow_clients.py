"""The emit server under ``emit-push server`` (uvicorn, as ``cli.serving`` runs it) cuts
off slow clients: headers and bodies have read timeouts, set in ServerConfig. Streams and
idle keep-alive connections are not cut."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect

from emit_push.cli.serving import uvicorn_server
from emit_push.server import API_PREFIX, EmitServer
from tests.conftest import ADMIN_KEY, SPACE, make_config
from tests.server.slow_clients import Served, closed_after, request_bytes, trickle

TIMEOUT = 0.3


@pytest.fixture
def served() -> Iterator[Served]:
    emit = EmitServer(make_config(header_timeout=TIMEOUT, body_timeout=TIMEOUT))
    served = Served(lambda on_started: uvicorn_server(emit, on_started=on_started))
    yield served
    served.stop()


async def test_slow_headers_and_stalled_bodies_are_cut_off(served: Served) -> None:
    path = f"{API_PREFIX}/spaces/{SPACE}/jobs"
    create = request_bytes(path, json.dumps({"name": "a"}).encode())

    async def slow_headers(writer: asyncio.StreamWriter) -> None:
        await trickle(writer, create, every=0.02)

    async def stalled_body(writer: asyncio.StreamWriter) -> None:
        writer.write(create[:-3])
        await asyncio.Event().wait()

    closed = await asyncio.gather(
        *(closed_after(served.port, slow_headers) for _ in range(50)),
        closed_after(served.port, stalled_body),
    )
    assert all(TIMEOUT * 0.9 <= seconds < TIMEOUT + 1.5 for seconds in closed), closed


async def test_streams_and_idle_connections_are_not_cut(served: Served) -> None:
    base = f"http://127.0.0.1:{served.port}{API_PREFIX}"
    headers = {"x-api-key": ADMIN_KEY}
    async with httpx.AsyncClient(base_url=base, headers=headers, trust_env=False) as http:
        job_id = (await http.post(f"/spaces/{SPACE}/jobs", json={"name": "a"})).json()["id"]
        url = f"ws://127.0.0.1:{served.port}{API_PREFIX}/realtime/{job_id}?token={ADMIN_KEY}"
        async with connect(url, open_timeout=5) as ws:
            assert json.loads(await ws.recv())["type"] == "init"
            await asyncio.sleep(TIMEOUT * 3)  # a quiet stream, and an idle pooled connection
            killed = await http.post(f"/jobs/{job_id}/kill", json={"reason": "done"})
            assert killed.status_code == 200
            event = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert (event["type"], event["data"]) == ("killed", {"reason": "done"})
