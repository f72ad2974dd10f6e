"""Fixtures for the framework: an EmitPush app wired to the in-process emit server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from emit_push import AsyncEmitClient, EmitPush, PushResult
from emit_push.server import EmitServer
from tests.conftest import ADMIN_KEY, SPACE, WORKER_KEY, client_for

BASE = "http://emit.test/api/v1"


def worker_client(emit: EmitServer, **options: Any) -> AsyncEmitClient:
    options.setdefault("transport", httpx.ASGITransport(app=emit.app))
    options.setdefault("base_url", BASE)
    return AsyncEmitClient(space_id=SPACE, api_key=WORKER_KEY, **options)


@pytest.fixture
async def admin(emit: EmitServer) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(emit, ADMIN_KEY) as client:
        yield client


@pytest.fixture
async def make_app(emit: EmitServer) -> AsyncIterator[Callable[..., EmitPush]]:
    """``make_app(**options)``: an EmitPush whose client talks to the in-process server."""
    clients: list[AsyncEmitClient] = []

    def make(**options: Any) -> EmitPush:
        client = options.pop("client", None) or worker_client(emit)
        clients.append(client)
        options.setdefault("push_secret", None)
        return EmitPush(client=client, **options)

    yield make
    for client in clients:
        await client.aclose()


async def create(admin: httpx.AsyncClient, name: str, payload: Any = None, **spec: Any) -> str:
    body = {"name": name, "payload": payload, **spec}
    response = await admin.post(f"/spaces/{SPACE}/jobs", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def push(app: EmitPush, job_id: str, name: str | None = None, **kw: Any) -> PushResult:
    body = {"type": "job.pending", "jobId": job_id, "spaceId": SPACE}
    if name is not None:
        body["name"] = name
    return await app.handle_push(json.dumps(body).encode(), {}, **kw)


async def job(admin: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await admin.get(f"/jobs/{job_id}")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def logs(admin: httpx.AsyncClient, job_id: str) -> list[str]:
    page = (await admin.get(f"/jobs/{job_id}/logs", params={"limit": 1000})).json()
    return [entry["message"] for entry in page["logs"]]


def event_types(document: dict[str, Any]) -> list[str]:
    return [e["type"] for e in document["events"] if not e["type"].startswith("push_")]
