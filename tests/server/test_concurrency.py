"""Poll and claim are atomic: concurrent callers never share a delivery (real uvicorn)."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from tests.conftest import SPACE, WORKER_KEY, LiveServer


async def test_200_concurrent_claims_of_one_job_give_one_success(
    live_server: LiveServer,
) -> None:
    limits = httpx.Limits(max_connections=200)  # 200 requests truly in flight at once
    async with (
        live_server.client() as producer,
        live_server.client(WORKER_KEY, limits=limits) as worker,
    ):
        ref = (await producer.post(f"/spaces/{SPACE}/jobs", json={"name": "once"})).json()
        replies = await asyncio.gather(
            *(worker.post(f"/jobs/{ref['id']}/claim") for _ in range(200))
        )
        outcome = Counter(r.status_code for r in replies)
        assert outcome == {200: 1, 409: 199}
        assert {r.json()["code"] for r in replies if r.status_code == 409} == {"invalid_state"}
        job = (await producer.get(f"/jobs/{ref['id']}")).json()
        assert [e["type"] for e in job["events"]].count("delivered") == 1


async def test_concurrent_polls_hand_each_job_to_one_worker(live_server: LiveServer) -> None:
    async with live_server.client() as producer, live_server.client(WORKER_KEY) as worker:
        specs = [{"name": "batch", "payload": n} for n in range(300)]
        assert (await producer.post(f"/spaces/{SPACE}/jobs", json=specs)).status_code == 201

        async def poll_until_empty() -> list[str]:
            got: list[str] = []
            while True:
                reply = await worker.post(f"/spaces/{SPACE}/jobs/poll", json={"count": 7})
                jobs = reply.json()["jobs"]
                if not jobs:
                    return got
                got += [job["id"] for job in jobs]

        batches = await asyncio.gather(*(poll_until_empty() for _ in range(20)))
    delivered = [job_id for batch in batches for job_id in batch]
    assert len(delivered) == 300
    assert len(set(delivered)) == 300
    assert sum(1 for batch in batches if batch) > 1  # the work really was shared
