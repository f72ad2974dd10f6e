"""What a backlog costs the local emit server: poll and list at 1k and 200k pending jobs,
and one ``GET /jobs/:id`` of a job with a very long history.

Each call goes through the server's ASGI app in-process (httpx's ASGITransport: the real
routing, auth, SQL and rendering, without sockets), on a file database, as
``emit-push server`` keeps it. Every figure is the median of ``--repeat`` calls, in ms;
each poll delivers one job, so the backlog shrinks by ``--repeat`` per poll row. A call
that blocks for a while here blocks the server's event loop for as long.

    python benchmarks/server_backlog.py [--sizes 1000 200000] [--repeat 25] [--history-mb 240]

Rows: ``poll`` (count 1, no filter), ``poll types`` (a filter matching half the jobs),
``list`` (newest 50), ``list pending`` (``status=pending``), ``list offset`` and
``list pending offset`` at half the backlog deep, and ``list before`` (the same depth by
the ``before=<job id>`` cursor, where the server has it).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from emit_push.server import EmitServer, KeySpec, ServerConfig
from emit_push.server._ids import new_ulid
from emit_push.server._records import NewJob

SPACE = "01JBENCHSPACE0000000000000"
KEY = "emit_bench_backlog_key"
SCOPES = ["jobs:worker", "jobs:create", "jobs:kill", "space:admin"]
CHUNK = 1000


def config(db: Path) -> ServerConfig:
    return ServerConfig(db_path=str(db), space_id=SPACE, api_keys=[KeySpec(KEY, SCOPES)])


def client(server: EmitServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=server.app),
        base_url="http://bench/api/v1",
        headers={"x-api-key": KEY},
    )


async def fill(server: EmitServer, count: int) -> None:
    """``count`` pending jobs, named ``a`` and ``b`` in turn, created a chunk at a time."""
    specs = [NewJob("ab"[i % 2], '{"n":1}', 3, 300, None, None, None) for i in range(CHUNK)]
    for start in range(0, count, CHUNK):
        server.engine.create(SPACE, specs[: min(CHUNK, count - start)])
        server.store.commit_group()
    await server.store.durable()


async def median_ms(call: Callable[[], Awaitable[httpx.Response]], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = await call()
        samples.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"{response.request.url} answered {response.status_code}")
    return statistics.median(samples) * 1000


async def backlog(size: int, repeat: int, folder: Path) -> dict[str, float | None]:
    async with EmitServer(config(folder / f"backlog-{size}.sqlite3")) as server:
        started = time.perf_counter()
        await fill(server, size)
        print(f"  {size:>7,} pending jobs created in {time.perf_counter() - started:.1f} s")
        async with client(server) as http:
            deep = size // 2
            path = f"/spaces/{SPACE}/jobs"
            ids = (await http.get(path, params={"limit": 100, "offset": deep - 1})).json()
            cursor = ids[0]["id"]  # the job just above the deep page
            calls: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
                "list": lambda: http.get(path, params={"limit": 50}),
                "list pending": lambda: http.get(path, params={"limit": 50, "status": "pending"}),
                "list offset": lambda: http.get(path, params={"limit": 50, "offset": deep}),
                "list pending offset": lambda: http.get(
                    path, params={"limit": 50, "offset": deep, "status": "pending"}
                ),
                "list before": lambda: http.get(path, params={"limit": 50, "before": cursor}),
                "poll": lambda: http.post(f"{path}/poll", json={"count": 1}),
                "poll types": lambda: http.post(f"{path}/poll", json={"count": 1, "types": ["b"]}),
            }
            figures: dict[str, float | None] = {}
            for name, call in calls.items():
                figures[name] = await median_ms(call, repeat)
            page = (await calls["list before"]()).json()
            if not page or page[0]["id"] >= cursor:  # the server ignored `before`
                figures["list before"] = None
    return figures


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process, in MB."""
    current = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def history(megabytes: int, folder: Path) -> None:
    """A job with ``megabytes`` of 64 KiB events written straight into the database (what
    an old server accepted, or a long-running job's progress), then one read of it."""
    async with EmitServer(config(folder / "history.sqlite3")) as server:
        [job] = server.engine.create(SPACE, [NewJob("h", "null", 3, 300, None, None, None)])
        server.store.commit_group()
        data = '{"blob":"' + "x" * (64 * 1024 - 12) + '"}'
        count = megabytes * 16
        with server.store.write() as db:
            db.executemany(
                "INSERT INTO job_events VALUES (?, ?, 'event', ?, 0, ?)",
                ((new_ulid(), job["id"], data, job["created_at"]) for _ in range(count)),
            )
        server.store.commit_group()
        async with client(server) as http:
            before, _ = rss_mb()
            started = time.perf_counter()
            response = await http.get(f"/jobs/{job['id']}")
            elapsed = time.perf_counter() - started
            document: dict[str, Any] = response.json()
            size = len(response.content)
            del response
            after, peak = rss_mb()
    shown = len(document["events"])
    print(
        f"  GET /jobs/:id, {count:,} events of 64 KiB ({megabytes} MB): {elapsed * 1000:,.0f} ms,"
        f" {shown:,} events in {size / 1e6:,.1f} MB;"
        f" RSS {before:,.0f} MB before, {after:,.0f} MB after, peak {peak:,.0f} MB"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 200_000])
    parser.add_argument("--repeat", type=int, default=25)
    parser.add_argument("--history-mb", type=int, default=240)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        if args.history_mb:
            print("history")
            await history(args.history_mb, folder)
        print("backlog")
        results = {size: await backlog(size, args.repeat, folder) for size in args.sizes}
    sizes = list(results)
    print(f"\n  {'median ms':<20}" + "".join(f"{f'{s:,} pending':>16}" for s in sizes))
    for row in results[sizes[0]]:
        cells = "".join(
            f"{'n/a' if results[s][row] is None else f'{results[s][row]:.2f}':>16}" for s in sizes
        )
        print(f"  {row:<20}{cells}")


if __name__ == "__main__":
    asyncio.run(main())
