"""What the SDK costs over bare httpx: the same 1,000 calls, side by side, in one run.

    .venv/bin/python benchmarks/sdk_overhead.py

It starts the local emit server (in memory) in a child process on 127.0.0.1, so server
work does not share the GIL with the client being measured, and runs one workload through
``AsyncEmitClient`` and through a bare ``httpx.AsyncClient``: per job, create, claim,
ack, progress and complete (5 calls), for 200 jobs, in 20 short rounds that alternate
between the two (and their order), so that drift and noise hit both alike. It reports
wall time (what a caller waits) and the client process's CPU time (what the SDK itself
costs, the server being in another process). The aim is a wall-time ratio of <= 1.10.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from statistics import median

import httpx

SPACE = "01JBENCHSPACE0000000000000"
KEY = "emit_bench_admin_key"
ROUNDS = 20
JOBS_PER_ROUND = 10  # x 5 calls x 20 rounds = 1,000 calls per client
PAYLOAD = {"inputUrl": "s3://bucket/in.mov", "outputKey": "out/clip.mp4", "width": 1280}


def serve() -> None:
    """Child process: the local emit server on a free loopback port; prints its base URL."""
    from emit_push.cli.serving import base_url, bind, uvicorn_server
    from emit_push.server import EmitServer, KeySpec, ServerConfig

    sock = bind("127.0.0.1", 0)
    scopes = ["jobs:worker", "jobs:create", "jobs:kill", "space:admin"]
    config = ServerConfig(db_path=":memory:", space_id=SPACE, api_keys=[KeySpec(KEY, scopes)])
    url = base_url(sock)
    server = uvicorn_server(
        EmitServer(config), "warning", on_started=lambda: print(url, flush=True)
    )
    asyncio.run(server.serve(sockets=[sock]))


@contextlib.contextmanager
def local_server() -> Iterator[str]:
    """Run ``serve`` in a child process; yields the base URL (always 127.0.0.1)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the server did not start: {url!r}")
        yield url
    finally:
        child.terminate()
        child.wait(10)


async def sdk_round(client: object, jobs: int) -> None:
    from emit_push import AsyncEmitClient

    assert isinstance(client, AsyncEmitClient)
    for _ in range(jobs):
        ref = await client.jobs.create({"name": "bench", "payload": PAYLOAD})
        job = await client.jobs.claim(ref.id)
        await job.ack()
        await job.progress(50, "Transcoding")
        await job.complete({"outputUrl": "s3://final/out/clip.mp4"})


async def bare_round(http: httpx.AsyncClient, jobs: int) -> None:
    for _ in range(jobs):
        r = await http.post(f"/spaces/{SPACE}/jobs", json={"name": "bench", "payload": PAYLOAD})
        r.raise_for_status()
        job_id = r.json()["id"]
        r = await http.post(f"/jobs/{job_id}/claim")
        r.raise_for_status()
        r.json()
        r = await http.post(f"/jobs/{job_id}/ack")
        r.raise_for_status()
        r.json()
        r = await http.post(
            f"/jobs/{job_id}/progress", json={"percent": 50, "message": "Transcoding"}
        )
        r.raise_for_status()
        r.json()
        r = await http.post(
            f"/jobs/{job_id}/complete", json={"result": {"outputUrl": "s3://final/out/clip.mp4"}}
        )
        r.raise_for_status()
        r.json()


async def timed(run: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """Wall and CPU seconds of ``run``."""
    wall, cpu = time.perf_counter(), time.process_time()
    await run()
    return time.perf_counter() - wall, time.process_time() - cpu


async def main() -> int:
    from emit_push import AsyncEmitClient

    with local_server() as url:
        headers = {"x-api-key": KEY}
        async with (
            httpx.AsyncClient(base_url=url, headers=headers, trust_env=False) as http,
            AsyncEmitClient(
                space_id=SPACE,
                api_key=KEY,
                base_url=url,
                http_client=httpx.AsyncClient(trust_env=False),
            ) as client,
        ):
            await sdk_round(client, 10)  # warm up both: connections, imports, caches
            await bare_round(http, 10)
            sdk_times: list[tuple[float, float]] = []
            bare_times: list[tuple[float, float]] = []
            for n in range(ROUNDS):
                pair = [
                    ("sdk", lambda: sdk_round(client, JOBS_PER_ROUND)),
                    ("bare", lambda: bare_round(http, JOBS_PER_ROUND)),
                ]
                for name, run in pair if n % 2 == 0 else reversed(pair):
                    (sdk_times if name == "sdk" else bare_times).append(await timed(run))
    calls = ROUNDS * JOBS_PER_ROUND * 5
    sdk_wall, sdk_cpu = (sum(t[i] for t in sdk_times) for i in (0, 1))
    bare_wall, bare_cpu = (sum(t[i] for t in bare_times) for i in (0, 1))
    rounds = [s[0] / b[0] for s, b in zip(sdk_times, bare_times, strict=True)]
    print(f"{calls} calls each (create, claim, ack, progress, complete) against {url}")
    print("                   wall time            client CPU")
    for name, wall, cpu in [
        ("AsyncEmitClient", sdk_wall, sdk_cpu),
        ("bare httpx", bare_wall, bare_cpu),
    ]:
        print(f"  {name:<16} {wall:6.3f} s {wall / calls * 1e6:6.0f} us/call"
              f"   {cpu:6.3f} s {cpu / calls * 1e6:6.0f} us/call")  # fmt: skip
    print(f"  ratio            {sdk_wall / bare_wall:6.3f} (median round {median(rounds):.3f})"
          f"     {sdk_cpu / bare_cpu:6.3f}      aim: wall ratio <= 1.10")  # fmt: skip
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        sys.exit(asyncio.run(main()))
