"""The batched job logger: the cost of one ``job.log.info`` call, and 100,000 lines shipped.

    .venv/bin/python benchmarks/logger.py

1. Enqueue cost: ``job.log.info`` 100,000 times (in runs of 10,000, the buffer's cap,
   with an untimed flush to a runner that discards between runs, so nothing is dropped),
   timed around the calls only. The aim is a mean of at most 5 us. Shown for the async
   job and the sync facade, without and with metadata.
2. Shipping: one async job logs 100,000 lines as fast as it can (bursts of 1,000 lines,
   yielding to the event loop between bursts) to the local emit server, in a child process
   on 127.0.0.1; closing the job sends the rest; then every line is read back and checked,
   in order. A burst that fast outruns any network, so the buffer is sized for it
   (``max_buffered_entries=100_000``; batches stay at the default 100 lines, gzipped): the
   point is that nothing is lost or reordered on the way, and what it costs.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import time
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

    async def run(self, call: Any) -> Any:
        return None


class SyncDiscard:
    def run(self, call: Any) -> Any:
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


async def ship(url: str) -> tuple[float, int, int, int]:
    async with AsyncEmitClient(space_id=SPACE, api_key=KEY, base_url=url) as client:
        ref = await client.jobs.create({"name": "bench-ship"})
        job = await client.jobs.claim(ref.id, logger=LoggerOptions(max_buffered_entries=LINES))
        await job.ack()
        start = time.perf_counter()
        peak = 0
        for first in range(0, LINES, BURST):
            for n in range(first, first + BURST):
                job.log.info(f"line {n}", metadata={"n": n})
            peak = max(peak, job.log.buffered)
            await asyncio.sleep(0)  # the job's own awaits: the shipper runs meanwhile
        await job.complete()  # sends what is left first
        await job.aclose()
        elapsed = time.perf_counter() - start
        seen, after = 0, None
        while True:
            page = await job.get_logs(after=after, limit=1000)
            for entry in page.logs:
                assert entry.message == f"line {seen}", (entry.message, seen)
                assert entry.metadata == {"n": seen}
                seen += 1
            if page.next_cursor is None:
                break
            after = page.next_cursor
        assert seen == LINES, f"{LINES - seen} lines missing"
        return elapsed, job.log.sent, job.log.dropped + job.log.lost, peak


async def main() -> int:
    costs = await measure_enqueue()
    with local_server() as url:
        elapsed, sent, lost, peak = await ship(url)
    print(f"job.log.info, mean of {CALLS:,} calls (enqueue only; aim <= 5 us)")
    for label, cost in costs:
        print(f"  {label:<30} {cost * 1e6:5.2f} us")
    print(f"shipping {LINES:,} lines from one async job to {url}")
    print(f"  sent {sent:,}, dropped or lost {lost}, read back in order: {LINES:,}")
    rate = LINES / elapsed
    print(f"  {elapsed:.2f} s from the first line to the last accepted: {rate:,.0f} lines/s")
    print(f"  most lines waiting at once: {peak:,}")
    return 0 if lost == 0 and sent == LINES else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
