"""Full job lifecycles per second against the local emit server, over loopback.

Each lifecycle is five calls: create, claim, ack, progress, complete. The server runs as
its own process (``emit-push server``) on a file database, as a developer would run it;
this process drives it with concurrent workers, each on its own keep-alive connection.
Prints lifecycles/s and p50/p99 per call.

The load comes from a minimal HTTP/1.1 client rather than httpx: on this 2-core machine
httpx's connection pool is itself the bottleneck (about 600 calls/s with 2 workers, and
*fewer* with more: 400/s with 8), so it would measure the client, not the server.

    python benchmarks/server_throughput.py [--workers 32] [--lifecycles 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SPACE = "01JBENCHSPACE0000000000000"
KEY = "emit_bench_key"
CALLS = ("create", "claim", "ack", "progress", "complete")
PREFIX = "/api/v1"


def start_server(db: Path) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable, "-m", "emit_push.cli", "server", "--port", "0", "--db", str(db),
        "--space-id", SPACE, "--api-key", f"{KEY}=jobs:worker,jobs:create",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("emit local server"):
            return proc, line.split()[-1]
    raise SystemExit("the server did not start")


class Connection:
    """One keep-alive HTTP/1.1 connection: a request at a time, JSON in and out."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> Connection:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer)

    async def post(self, path: str, body: object = None) -> tuple[int, Any]:
        content = b"" if body is None else json.dumps(body).encode()
        head = (
            f"POST {PREFIX}{path} HTTP/1.1\r\nhost: bench\r\nx-api-key: {KEY}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(content)}\r\n\r\n"
        )
        self.writer.write(head.encode() + content)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) != b"\r\n":
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, json.loads(await self.reader.readexactly(length))

    def close(self) -> None:
        self.writer.close()


async def lifecycles(conn: Connection, count: int, timings: dict[str, list[float]]) -> None:
    steps = [
        ("claim", None),
        ("ack", None),
        ("progress", {"percent": 50, "message": "halfway"}),
        ("complete", {"result": {"ok": True}}),
    ]
    for _ in range(count):
        started = time.perf_counter()
        status, ref = await conn.post(
            f"/spaces/{SPACE}/jobs", {"name": "bench", "payload": {"n": 1}}
        )
        if status != 201:
            raise SystemExit(f"create answered {status}: {ref}")
        now = time.perf_counter()
        timings["create"].append(now - started)
        for call, body in steps:
            started = now
            status, reply = await conn.post(f"/jobs/{ref['id']}/{call}", body)
            if status != 200:
                raise SystemExit(f"{call} answered {status}: {reply}")
            now = time.perf_counter()
            timings[call].append(now - started)


async def run(url: str, workers: int, total: int) -> None:
    timings: dict[str, list[float]] = defaultdict(list)
    connections = [await Connection.open(url) for _ in range(workers)]
    await asyncio.gather(*(lifecycles(c, 5, defaultdict(list)) for c in connections))  # warm up
    per_worker = total // workers
    started = time.perf_counter()
    await asyncio.gather(*(lifecycles(c, per_worker, timings) for c in connections))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    done = per_worker * workers
    print(f"{done} lifecycles ({done * 5} calls) by {workers} workers in {elapsed:.2f} s")
    print(f"  {done / elapsed:,.0f} lifecycles/s   {done * 5 / elapsed:,.0f} calls/s")
    print(f"  {'call':<10} {'p50 ms':>8} {'p99 ms':>8}")
    for call in CALLS:
        samples = sorted(timings[call])
        p50 = statistics.median(samples) * 1000
        p99 = samples[int(len(samples) * 0.99)] * 1000
        print(f"  {call:<10} {p50:>8.2f} {p99:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--lifecycles", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        proc, url = start_server(Path(folder) / "bench.sqlite3")
        try:
            print(f"server {url} (file database, pid {proc.pid}); client pid {os.getpid()}")
            asyncio.run(run(url, args.workers, args.lifecycles))
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
