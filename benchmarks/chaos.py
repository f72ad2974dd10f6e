"""What injected API faults cost the jobs: completed, run twice, stranded, lines lost.

For each failure rate (1 in 10, 1 in 3) and kind of failure, ``--jobs`` jobs run through
pushes and through a polling worker while the worker's API requests fail at that rate:

- ``before``: answered 503 before the server acts (it never does);
- ``after``:  the server acts, and its answer is lost (a 503 in its place);
- ``drop``:   the connection closes with no answer, half the time before the server
  acts, half the time after.

The local emit server runs on uvicorn on 127.0.0.1, in this process and on its event
loop, behind the fault harness (``tests/harnesses/faults.py``); the app's client talks to
it over loopback, while jobs are created and read back through a clean in-process client.
Pushes model emit.run's (``tests/faults/workload.py``): one each time a job enters
``pending``, sent again while it is answered 5xx, at most ``--concurrency`` (20) being
handled at once, as the polling worker runs ``--count`` (20) jobs at once. The handler
reports progress, writes a checkpoint and three log lines, and returns. A fresh server
(in memory) per cell.

Per cell it prints: jobs completed; jobs whose handler ran more than once, and twice at
the same time; jobs stranded (still pending, delivered or running after the runs end and
their timeouts pass); push answers that were 5xx; log lines the handler wrote that were
not stored, or stored more than once; faults injected; seconds.

Jobs have short timeouts (``--timeout``, 3 s) so that what a lost answer leaves behind
comes back within the run; the client's retry backoff is scaled by ``--retry-scale``
(0.1) to match, so a 3 s timeout stands for a 30 s one.

    python benchmarks/chaos.py [--jobs 200] [--rates 10,3] [--kinds before,after,drop]
                               [--via push,poll] [--seed 1] [--timeout 3] [--retry-scale 0.1]
                               [--concurrency 20] [--count 20] [--limit 60]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the harness lives in tests/

from emit_push import AsyncEmitClient, EmitPush
from emit_push.server import API_PREFIX, EmitServer, KeySpec, ServerConfig
from tests.faults.workload import (
    PushService,
    Runs,
    Tally,
    create_jobs,
    live_jobs,
    polling,
    quicken,
    register,
    settle,
)
from tests.harnesses.faults import FaultyServer, Kind, serve

SPACE = "01JBENCHCHAOSSPACE00000000"
WORKER_KEY = "emit_bench_chaos_worker"
ADMIN_KEY = "emit_bench_chaos_admin"
KINDS: dict[str, Kind] = {"before": "before", "after": "after", "drop": "drop"}


@dataclass
class Cell:
    via: str
    kind: str
    rate: int
    tally: Tally
    five_xx: int | None
    injected: int
    seconds: float


def config() -> ServerConfig:
    admin = KeySpec(ADMIN_KEY, ["jobs:worker", "jobs:create", "jobs:kill"], name="admin")
    return ServerConfig(db_path=":memory:", space_id=SPACE, worker_key=WORKER_KEY, api_keys=[admin])


async def run_cell(args: argparse.Namespace, via: str, kind: str, rate: int) -> Cell:
    spec = {"timeoutSeconds": args.timeout, "maxRetries": 10}
    limit = args.limit
    async with EmitServer(config()) as emit:
        faults = FaultyServer(emit.app, kind=KINDS[kind], chance=1 / rate, seed=args.seed)
        admin = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=emit.app),
            base_url=f"http://emit.test{API_PREFIX}",
            headers={"x-api-key": ADMIN_KEY},
        )
        async with serve(faults) as url, admin:
            client = AsyncEmitClient(
                space_id=SPACE,
                api_key=WORKER_KEY,
                base_url=url + API_PREFIX,
                transport=httpx.AsyncHTTPTransport(),
            )
            app = EmitPush(client=quicken(client, args.retry_scale), push_secret=None)
            runs = Runs()
            register(app, runs, work=0.01)
            started = time.monotonic()
            five_xx = None
            if via == "push":
                service = PushService(app, emit, SPACE, concurrency=args.concurrency)
                async with service:

                    async def over() -> bool:
                        busy = await live_jobs(admin, SPACE, ("delivered", "running"))
                        return service.idle() and not busy

                    ids = await create_jobs(admin, SPACE, args.jobs, **spec)
                    await settle(over, timeout=limit)
                five_xx = service.five_xx
            else:

                async def finished() -> bool:
                    return not await live_jobs(admin, SPACE)

                async with polling(app, count=args.count) as worker:
                    ids = await create_jobs(admin, SPACE, args.jobs, **spec)
                    await settle(lambda: worker.done() or finished(), timeout=limit)
            seconds = time.monotonic() - started
            await client.aclose()
            if await live_jobs(admin, SPACE, ("delivered", "running")):
                await asyncio.sleep(args.timeout + 1)  # the runs are over: let the timeouts pass
            tally = await Tally.read(admin, ids, runs)
    return Cell(via, kind, rate, tally, five_xx, faults.total, seconds)


def row(cell: Cell) -> str:
    t = cell.tally
    five = "-" if cell.five_xx is None else str(cell.five_xx)
    cells = [
        cell.via, cell.kind, f"1/{cell.rate}", f"{t.completed}/{len(t.statuses)}",
        str(len(t.runs.twice)), str(len(t.runs.overlapping)), str(len(t.stranded)), five,
        str(sum(t.lines_lost.values())), str(sum(t.lines_duplicated.values())),
        str(cell.injected), f"{cell.seconds:.1f}",
    ]  # fmt: skip
    return "".join(f"{value:>{width}}" for value, width in zip(cells, WIDTHS, strict=True))


HEADER = [
    "via", "kind", "rate", "completed", "ran twice", "at once", "stranded", "5xx",
    "lines lost", "lines dup", "faults", "seconds",
]  # fmt: skip
WIDTHS = [5, 8, 6, 11, 11, 9, 10, 6, 12, 11, 8, 9]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="jobs per cell (200)")
    parser.add_argument("--rates", default="10,3", help="1 in N requests fail: N list (10,3)")
    parser.add_argument("--kinds", default="before,after,drop", help="failure kinds")
    parser.add_argument("--via", default="push,poll", help="push, poll or both")
    parser.add_argument("--seed", type=int, default=1, help="seed of the faults (1)")
    parser.add_argument("--timeout", type=int, default=3, help="the jobs' timeoutSeconds (3)")
    parser.add_argument("--retry-scale", type=float, default=0.1, help="client backoff x (0.1)")
    parser.add_argument("--count", type=int, default=20, help="jobs per poll (20)")
    parser.add_argument("--concurrency", type=int, default=20, help="pushes at once (20)")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds a cell may take (60)")
    parser.add_argument("--verbose", action="store_true", help="show emit_push's log")
    args = parser.parse_args()
    if not args.verbose:
        logging.getLogger("emit_push").setLevel(logging.CRITICAL)  # the table says it all
    rates = [int(n) for n in args.rates.split(",")]
    kinds = args.kinds.split(",")
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds {sorted(unknown)}; the kinds are {sorted(KINDS)}")
    print(
        f"{args.jobs} jobs per cell, timeoutSeconds {args.timeout}, retry backoff x"
        f" {args.retry_scale}, seed {args.seed}; every worker request may fail\n"
    )
    print("".join(f"{name:>{width}}" for name, width in zip(HEADER, WIDTHS, strict=True)))
    for via in args.via.split(","):
        for rate in rates:
            for kind in kinds:
                print(row(await run_cell(args, via, kind, rate)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
