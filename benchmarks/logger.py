"""The batched job logger: the cost of one ``job.log.info`` call, and 100,000 lines shipped.

    .venv/bin/python benchmarks/logger.py

1. Enqueue cost: ``job.log.info`` 100,000 times (in runs of 10,000, the buffer's cap,
   with an untimed flush to a runner that discards between runs, so nothing is dropped),
   timed around the calls only. The aim is a mean of at most 5 us. Shown for the async
   job and the sync facade, without and with metadata. The lines are also echoed to the
   ``emit_push.job`` logger (the default); with no handler configured that costs a check.
   Then the other way of the bridge: a stdlib record made inside a running job, captured
   into its logs or not (aim: at most 10 us).
2. Shipping, with the default ``LoggerOptions`` (batches of 100, gzipped, a cap of
   10,000 waiting lines), one async job to the local emit server in a child process on
   127.0.0.1; every line is read back and checked afterwards.

   a. Paced: the producer logs in bursts of 1,000 lines and, between bursts, waits while
      more than half the cap is waiting: a producer the shipper keeps up with. Nothing
      may be dropped; all 100,000 lines must come back, in order.
   b. Burst: the producer logs the 100,000 lines as fast as it can (yielding to the loop
      between bursts of 1,000), far faster than any network. The cap drops the oldest
      waiting lines; the point is that the loss is counted exactly: the lines read back
      are the produced ones in order with gaps, ``dropped + received == produced``, and
      the drop reports in the log add up to ``dropped``.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from sdk_overhead import KEY, SPACE, local_server

from emit_push import (
    AsyncClaimedJob,
    AsyncEmitClient,
    ClaimedJob,
    JobDescriptor,
    LoggerOptions,
)

CALLS = 100_000
RUN = 10_000
LINES = 100_000
BURST = 1_000  # lines per burst between two awaits of the job


async def enqueue_cost(job: Any, flush: Any, metadata: dict[str, Any] | None) -> float:
    """Mean seconds per ``job.log.info`` over CALLS calls; flushes between runs, untimed."""
    info = job.log.info
    spent = 0.0
    for _ in range(CALLS // RUN):
        start = time.perf_counter()
        for _ in range(RUN):
            info("processed item", metadata)
        spent += time.perf_counter() - start
        flushed = flush()
        if inspect.isawaitable(flushed):
            await flushed
    assert job.log.dropped == 0, "the benchmark dropped entries"
    assert job.log.lost == 0, "the benchmark lost entries"
    return spent / CALLS


class Discard:
    """A runner that answers every call without sending it: enqueue cost only."""

    async def send(self, call: Any) -> Any:
        return None


class SyncDiscard:
    def send(self, call: Any) -> Any:
        return None


async def measure_enqueue() -> list[tuple[str, float]]:
    descriptor = JobDescriptor(id="bench", name="bench-log")
    results = []
    for label, metadata in [("", None), (", metadata", {"item": 42, "stage": "resize"})]:
        job = AsyncClaimedJob(Discard(), descriptor)
        results.append((f"AsyncClaimedJob{label}", await enqueue_cost(job, job.aclose, metadata)))
        sync_job = ClaimedJob(SyncDiscard(), descriptor)
        cost = await enqueue_cost(sync_job, sync_job.close, metadata)
        results.append((f"ClaimedJob (sync){label}", cost))
    return results


@dataclass
class Shipped:
    elapsed: float
    sent: int
    dropped: int
    lost: int
    received: int
    reported: int  # the sum of the drop reports' droppedEntries
    peak: int


async def ship(url: str, *, paced: bool) -> Shipped:
    """One async job logs LINES lines with the default options; then all are read back."""
    async with AsyncEmitClient(space_id=SPACE, api_key=KEY, base_url=url) as client:
        ref = await client.jobs.create({"name": "bench-ship"})
        job = await client.jobs.claim(ref.id)  # default LoggerOptions
        await job.ack()
        high_water = LoggerOptions().max_buffered_entries // 2
        start = time.perf_counter()
        peak = 0
        for first in range(0, LINES, BURST):
            for n in range(first, first + BURST):
                job.log.info(f"line {n}", metadata={"n": n})
            peak = max(peak, job.log.buffered)
            await asyncio.sleep(0)  # the job's own awaits: the shipper runs meanwhile
            while paced and job.log.buffered > high_water:
                await asyncio.sleep(0.001)
        await job.complete()  # sends what is left first
        await job.aclose()
        elapsed = time.perf_counter() - start
        received, reported, last, after = 0, 0, -1, None
        while True:
            page = await job.get_logs(after=after, limit=1000)
            for entry in page.logs:
                if entry.source == "emit-push":  # a drop report
                    reported += (entry.metadata or {}).get("droppedEntries", 0)
                    continue
                n = (entry.metadata or {})["n"]
                assert entry.message == f"line {n}", entry.message
                assert n > last, f"line {n} after line {last}"  # in order, gaps allowed
                received, last = received + 1, n
            if page.next_cursor is None:
                break
            after = page.next_cursor
        log = job.log
        return Shipped(elapsed, log.sent, log.dropped, log.lost, received, reported, peak)


def record_cost(capture: bool) -> float:
    """Mean seconds per stdlib ``logger.warning`` made inside a running job (the bridge's
    context variable set, as execution sets it), captured into the job's logs or not."""
    import logging

    from emit_push._logs.bridge import Capture, current, install_capture

    install_capture()
    library = logging.getLogger("bench.library")
    library.propagate = False  # no handler at all: the record's making is what is timed
    library.addHandler(logging.NullHandler())
    job = AsyncClaimedJob(Discard(), JobDescriptor(id="bench", name="bench-log"))
    token = current.set(Capture(job, job.log, logging.INFO if capture else None))
    try:
        spent = 0.0
        for _ in range(CALLS // RUN):
            start = time.perf_counter()
            for _ in range(RUN):
                library.warning("cache miss for %s", "key")
            spent += time.perf_counter() - start
            job.log._buffer.abandon(None)  # keep the buffer under its cap, untimed
    finally:
        current.reset(token)
    return spent / CALLS


async def main() -> int:
    costs = await measure_enqueue()
    records = [("not captured (capture_level=None)", record_cost(False))]
    records.append(("captured into the job's logs", record_cost(True)))
    with local_server() as url:
        paced = await ship(url, paced=True)
        burst = await ship(url, paced=False)
    print(f"job.log.info, mean of {CALLS:,} calls (enqueue only; aim <= 5 us)")
    for label, cost in costs:
        print(f"  {label:<30} {cost * 1e6:5.2f} us")
    print("a stdlib logger.warning inside a running job, mean (aim <= 10 us)")
    for label, cost in records:
        print(f"  {label:<36} {cost * 1e6:5.2f} us")
    print(f"shipping {LINES:,} lines from one async job to {url}, default LoggerOptions")
    ok = True
    for label, run in [("a. paced (the shipper keeps up)", paced), ("b. burst", burst)]:
        exact = run.dropped + run.received == LINES and run.reported == run.dropped
        print(f"  {label}")
        print(
            f"     received {run.received:,} in order, dropped {run.dropped:,} "
            f"(reported in the log: {run.reported:,}), lost {run.lost}; "
            f"dropped + received == produced: {exact}"
        )
        rate = LINES / run.elapsed
        print(
            f"     {run.elapsed:.2f} s from the first line to the last accepted "
            f"({rate:,.0f} lines/s produced); most lines waiting at once: {run.peak:,}"
        )
        ok = ok and exact and run.lost == 0 and run.sent == run.received
    ok = ok and paced.dropped == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
