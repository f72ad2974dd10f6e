"""Helpers for the server's tests: short calls for the common requests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import SPACE


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
