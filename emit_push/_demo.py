"""``emit-push demo``: the local emit server and a scripted job lifecycle, over real HTTP.

It starts the server on a free loopback port (in memory), watches the space's realtime
stream, creates four jobs and works them as a polling worker would: one completes, one
fails once and succeeds on its retry, one is scheduled a second ahead, one is killed.
It ends with a summary read back from the server, and exits 0 when all ended as planned.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from .cli import base_url, bind, uvicorn_server
from .server import EmitServer, ServerConfig

__all__ = ["run_demo"]

EXPECTED = {
    "send-welcome-email": ("completed", 0),
    "resize-image": ("completed", 1),
    "nightly-report": ("completed", 0),
    "slow-export": ("killed", 0),
}


def say(who: str, text: str) -> None:
    print(f"  {who:<8} {text}", flush=True)


async def run_demo() -> int:
    emit = EmitServer(ServerConfig(db_path=":memory:"))
    sock = bind("127.0.0.1", 0)
    url = base_url(sock)
    ready = asyncio.Event()
    server = uvicorn_server(emit, "warning", on_started=ready.set)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    await ready.wait()
    c = emit.credentials
    print(f"emit local server on {url} (space {c.space_id})\n", flush=True)
    producer = httpx.AsyncClient(base_url=url, headers={"x-api-key": c.producer_key})
    worker = httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {c.worker_key}"})
    watcher = asyncio.create_task(_watch(url, c.space_id, c.producer_key))
    try:
        ids = await _script(producer, worker, c.space_id)
        await asyncio.sleep(0.1)  # let the stream print the last events
        return await _summary(producer, ids)
    finally:
        watcher.cancel()
        await producer.aclose()
        await worker.aclose()
        server.should_exit = True
        await serving


async def _watch(url: str, space_id: str, key: str) -> None:
    from websockets.asyncio.client import connect

    stream = url.replace("http", "ws", 1) + f"/realtime/spaces/{space_id}?token={key}"
    with contextlib.suppress(Exception):
        async with connect(stream) as ws:
            async for raw in ws:
                event = json.loads(raw)
                if event["type"] == "connected":
                    say("stream", f"connected at seq {event['seq']}, counts {event['counts']}")
                elif event["type"] not in {"logs", "checkpoint", "event"}:
                    say("stream", f"#{event['seq']} {event['jobName']}: {event['type']}")


async def _script(producer: httpx.AsyncClient, worker: httpx.AsyncClient, space: str) -> list[str]:
    in_a_second = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    specs: list[dict[str, Any]] = [
        {"name": "send-welcome-email", "payload": {"to": "ada@example.com"}},
        {"name": "resize-image", "payload": {"key": "cat.png", "width": 640}, "maxRetries": 2},
        {"name": "nightly-report", "payload": {"day": "today"}, "scheduledFor": in_a_second},
        {"name": "slow-export", "payload": {"rows": 10_000}},
    ]
    refs = (await producer.post(f"/spaces/{space}/jobs", json=specs)).raise_for_status().json()
    for spec, ref in zip(specs, refs, strict=True):
        say("producer", f"created {spec['name']} ({ref['status']})")
    export_id = refs[3]["id"]
    done: set[str] = set()
    while len(done) < 3:
        polled = await worker.post(f"/spaces/{space}/jobs/poll", json={"count": 5})
        jobs = polled.raise_for_status().json()["jobs"]
        if not jobs:
            await asyncio.sleep(0.1)
            continue
        for job in jobs:
            if job["name"] == "slow-export":
                await _start(worker, job)
                reason = {"reason": "cancelled by the producer"}
                await producer.post(f"/jobs/{export_id}/kill", json=reason)
                say("producer", "killed slow-export")
                late = await worker.post(f"/jobs/{export_id}/progress", json={"percent": 20,
                                         "message": "still exporting"})  # fmt: skip
                say(
                    "worker",
                    f"slow-export progress answered {late.status_code} {late.json()['code']}",
                )
            elif await _work(worker, job):
                done.add(job["id"])
    return [ref["id"] for ref in refs]


async def _start(worker: httpx.AsyncClient, job: dict[str, Any]) -> None:
    attempt = f" (attempt {job['attemptNumber']})" if job["attemptNumber"] else ""
    say("worker", f"claimed {job['name']}{attempt}")
    (await worker.post(f"/jobs/{job['id']}/ack")).raise_for_status()


async def _work(worker: httpx.AsyncClient, job: dict[str, Any]) -> bool:
    """Run one job; returns True when it completed."""
    await _start(worker, job)
    path = f"/jobs/{job['id']}"
    log = "\n".join(
        json.dumps({"level": level, "message": message})
        for level, message in [("info", f"starting {job['name']}"), ("debug", "payload ok")]
    )
    await worker.post(f"{path}/logs", content=log, headers={"content-type": "application/x-ndjson"})
    progress = {"percent": 50, "message": "halfway", "subProgress": {"io": {"percent": 80}}}
    await worker.post(f"{path}/progress", json=progress)
    await worker.post(f"{path}/checkpoint", json={"step": 1})
    if job["name"] == "resize-image" and job["attemptNumber"] == 0:
        await worker.post(f"{path}/fail", json={"error": "image service timed out"})
        say("worker", "resize-image failed: image service timed out (will retry)")
        return False
    result = {"ok": True, "handledBy": "demo-worker"}
    (await worker.post(f"{path}/complete", json={"result": result})).raise_for_status()
    say("worker", f"completed {job['name']}")
    return True


async def _summary(producer: httpx.AsyncClient, ids: list[str]) -> int:
    print(f"\n  {'job':<20} {'status':<10} {'attempt':>7}  {'events':>6}  {'logs':>4}  result")
    ok = True
    for job_id in ids:
        job = (await producer.get(f"/jobs/{job_id}")).raise_for_status().json()
        logs = (await producer.get(f"/jobs/{job_id}/logs")).raise_for_status().json()["logs"]
        result = json.dumps(job["result"])
        print(
            f"  {job['name']:<20} {job['status']:<10} {job['attemptNumber']:>7}"
            f"  {len(job['events']):>6}  {len(logs):>4}  {result}"
        )
        ok &= EXPECTED[job["name"]] == (job["status"], job["attemptNumber"])
    print("\nAll four jobs ended as planned." if ok else "\nSome jobs did not end as planned.")
    return 0 if ok else 1
