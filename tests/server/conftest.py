"""Helpers for the server's tests: short calls for the common requests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from emit_push.server import EmitServer, ServerConfig
from tests.conftest import SPACE, LocalResolver, make_config


@pytest.fixture
def server_config() -> ServerConfig:
    """The in-process server of these tests resolves names from a table (LocalResolver)."""
    return make_config(resolver=LocalResolver())


async def create(http: httpx.AsyncClient, name: str = "task", **spec: Any) -> str:
    response = await http.post(f"/spaces/{SPACE}/jobs", json={"name": name, **spec})
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


async def call(
    http: httpx.AsyncClient, job_id: str, action: str, body: Any = None
) -> httpx.Response:
    return await http.post(f"/jobs/{job_id}/{action}", json=body)


async def job(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await http.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


async def start(http: httpx.AsyncClient, job_id: str) -> None:
    """Claim and ack: the job is running."""
    assert (await call(http, job_id, "claim")).status_code == 200
    assert (await call(http, job_id, "ack")).status_code == 200


def event_types(document: dict[str, Any]) -> list[str]:
    return [event["type"] for event in document["events"]]


@dataclass(frozen=True)
class Delivery:
    type: str
    job_id: str
    data: Any


class Deliveries:
    """The outcomes of pushes and callbacks as the engine records them, to wait for.

    A callback's goes to the job's history only (no stream carries it), so a test that
    must wait for an outcome watches the engine's record call instead of a stream.
    """

    def __init__(self, emit: EmitServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.records: list[Delivery] = []
        self._changed = asyncio.Event()
        record = emit.engine.record_delivery

        def recording(
            outbox_id: int, job_id: str, kind: str | None, data: Any, retry_at: int | None = None
        ) -> None:
            record(outbox_id, job_id, kind, data, retry_at)
            if kind is not None:
                self.records.append(Delivery(kind, job_id, data))
                self._changed.set()

        monkeypatch.setattr(emit.engine, "record_delivery", recording)

    async def wait_for(self, count: int, *kinds: str, job_id: str | None = None) -> list[Delivery]:
        """The first ``count`` records of these kinds (of this job), once there are that many."""

        async def enough() -> list[Delivery]:
            while True:
                found = [r for r in self.records if r.type in kinds and job_id in (None, r.job_id)]
                if len(found) >= count:
                    return found[:count]
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(enough(), 10)


@pytest.fixture
def deliveries(emit: EmitServer, monkeypatch: pytest.MonkeyPatch) -> Deliveries:
    return Deliveries(emit, monkeypatch)
