"""Push handling through emit-push's ASGI adapter versus a minimal hand-written handler.

Both endpoints do the same work per push against the same local emit server: claim the
job, acknowledge it, complete it with a small result, and answer. The hand-written one is
Starlette + httpx and nothing else; the other is ``EmitPush`` with one ``@on_job``
function (push-secret check, validation, typed job, keepalive task, log flush). Each runs
in its own uvicorn process; this process creates the jobs and posts the pushes, in
alternating rounds so both see the same machine. Prints p50/p99 latency and pushes/s
for each, and the ratios.

    python benchmarks/push_overhead.py [--pushes 2000] [--concurrency 8] [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx

SPACE = "01JBENCHPUSHSPACE000000000"
KEY = "emit_bench_push_key"
SECRET = "bench-push-secret"
HEADERS = {"authorization": f"Bearer {SECRET}", "content-type": "application/json"}


# -- the two endpoints (run in child processes) -----------------------------------------


def emit_push_app(base_url: str) -> Any:
    from emit_push import EmitPush, Job

    app = EmitPush(space_id=SPACE, api_key=KEY, base_url=base_url, push_secret=SECRET)

    @app.on_job("bench")
    async def bench(job: Job) -> dict[str, bool]:
        return {"ok": True}

    return app.asgi()


def baseline_app(base_url: str) -> Any:
    """What a careful developer would write by hand: check, claim, ack, complete."""
    import hmac
    import json

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    http = httpx.AsyncClient(base_url=base_url, headers={"x-api-key": KEY})

    async def push(request: Request) -> JSONResponse:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, f"Bearer {SECRET}".encode()):
            return JSONResponse({"error": "unauthorized"}, 401)
        job_id = json.loads(await request.body())["jobId"]
        claim = await http.post(f"/jobs/{job_id}/claim")
        if claim.status_code != 200:
            return JSONResponse({"status": "skipped", "jobId": job_id})
        await http.post(f"/jobs/{job_id}/ack")
        await http.post(f"/jobs/{job_id}/complete", json={"result": {"ok": True}})
        return JSONResponse({"status": "completed", "jobId": job_id})

    return Starlette(routes=[Route("/", push, methods=["POST"])])


def serve(kind: str, base_url: str) -> None:
    import uvicorn

    from emit_push.cli.serving import base_url as url_of
    from emit_push.cli.serving import bind

    app = emit_push_app(base_url) if kind == "emit-push" else baseline_app(base_url)
    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    print(url_of(sock).removesuffix("/api/v1"), flush=True)
    server.run(sockets=[sock])


# -- the driver ---------------------------------------------------------------------------


def start(command: list[str], marker: str = "http://") -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        for word in line.split():
            if word.startswith(marker):
                return proc, word
    raise SystemExit(f"{command} did not start")


async def run_round(
    http: httpx.AsyncClient, target: str, job_ids: list[str], concurrency: int
) -> tuple[list[float], float]:
    queue = list(job_ids)
    latencies: list[float] = []

    async def worker() -> None:
        while queue:
            job_id = queue.pop()
            started = time.perf_counter()
            body = {"type": "job.pending", "jobId": job_id, "spaceId": SPACE, "name": "bench"}
            answer = await http.post(target, json=body, headers=HEADERS)
            latencies.append(time.perf_counter() - started)
            if answer.json().get("status") != "completed":
                raise SystemExit(f"{target}: {answer.status_code} {answer.text}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


async def drive(api: str, targets: dict[str, str], args: argparse.Namespace) -> None:
    limits = httpx.Limits(max_connections=args.concurrency * 2)
    async with httpx.AsyncClient(limits=limits, timeout=60, trust_env=False) as http:
        per_round = args.pushes // args.rounds
        results: dict[str, tuple[list[float], float]] = {name: ([], 0.0) for name in targets}

        async def jobs(count: int) -> list[str]:
            specs = [{"name": "bench", "payload": {"n": n}} for n in range(count)]
            refs = await http.post(
                f"{api}/spaces/{SPACE}/jobs", json=specs, headers={"x-api-key": KEY}
            )
            return [ref["id"] for ref in refs.json()]

        for target in targets.values():  # warm up both
            await run_round(http, target, await jobs(50), args.concurrency)
        for round_number in range(args.rounds):
            order = list(targets.items())
            if round_number % 2:
                order.reverse()
            for name, target in order:
                latencies, elapsed = await run_round(
                    http, target, await jobs(per_round), args.concurrency
                )
                total, spent = results[name]
                results[name] = (total + latencies, spent + elapsed)
    print(f"{per_round * args.rounds} pushes each, concurrency {args.concurrency}")
    print(f"  {'endpoint':<12} {'p50 ms':>8} {'p99 ms':>8} {'pushes/s':>9}")
    summary = {}
    for name, (latencies, spent) in results.items():
        latencies.sort()
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[int(len(latencies) * 0.99)] * 1000
        rate = len(latencies) / spent
        summary[name] = (p50, p99, rate)
        print(f"  {name:<12} {p50:>8.2f} {p99:>8.2f} {rate:>9.0f}")
    ours, base = summary["emit-push"], summary["hand-written"]
    print(
        f"ratio emit-push / hand-written: p50 {ours[0] / base[0]:.3f}, "
        f"p99 {ours[1] / base[1]:.3f}, throughput {base[2] / ours[2]:.3f} (aim <= 1.15)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "BASE_URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    emit_cmd = [
        sys.executable, "-m", "emit_push.cli", "server", "--port", "0", "--db", ":memory:",
        "--space-id", SPACE, "--api-key", f"{KEY}=jobs:worker,jobs:create",
    ]  # fmt: skip
    children = []
    try:
        server, api = start(emit_cmd)
        children.append(server)
        targets = {}
        for name, kind in (("emit-push", "emit-push"), ("hand-written", "baseline")):
            child, url = start([sys.executable, __file__, "--serve", kind, api])
            children.append(child)
            targets[name] = url + "/"
        asyncio.run(drive(api, targets, args))
    finally:
        for child in children:
            child.terminate()
            child.wait()


if __name__ == "__main__":
    main()
