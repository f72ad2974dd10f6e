"""Shippers: pacing after failures, and lines of jobs that are never closed."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from emit_push import AsyncEmitClient, LoggerOptions
from tests.logs.test_logger import LogSink
from tests.sdk.conftest import MOCK_URL, Sdk
from tests.waiting import eventually

# -- a service that is down while the job logs -------------------------------------------


@pytest.mark.parametrize(("status", "retry_after"), [(503, None), (429, "1")])
async def test_a_service_that_is_down_gets_a_few_sends_not_hundreds(
    offline: Sdk, status: int, retry_after: str | None
) -> None:
    sink = LogSink()
    sink.refuse, sink.status = 10**9, status
    if retry_after is not None:
        sink.headers = {"retry-after": retry_after}
    client = offline.mock(sink, max_retries=0)
    job = await offline(client.jobs.claim("j1", logger=LoggerOptions(flush_interval=0.05)))
    for burst in range(20):  # 2,000 lines over ~0.6 s: a full batch every 30 ms
        for n in range(100):
            job.log.info(f"{burst}:{n}")
        await anyio.sleep(0.03)
    attempts = sink.refused
    assert 1 <= attempts <= 4  # the first send, then a backoff that ignores full batches
    sink.refuse = 0
    await offline.close(job)  # closing still tries, backoff or not
    assert sink.messages() == [f"{b}:{n}" for b in range(20) for n in range(100)]
    assert (job.log.sent, job.log.dropped, job.log.lost) == (2000, 0, 0)


async def test_a_success_ends_the_backoff(offline: Sdk) -> None:
    sink = LogSink()
    sink.refuse = 1
    client = offline.mock(sink, max_retries=0)
    job = await offline(client.jobs.claim("j1", logger=LoggerOptions(flush_interval=0.02)))
    job.log.info("first")
    await eventually(lambda: sink.refused == 1, message="the first send refused")  # backing off
    await offline(job.flush())  # complete() does this: sends, and lifts the backoff
    job.log.info("second")
    assert await anyio.to_thread.run_sync(sink.wait_for, 2, 2.0)
    assert sink.messages() == ["first", "second"]
    await offline.close(job)


# -- jobs that are never closed ----------------------------------------------------------

_EXIT_SCRIPT = """
import gzip, json, sys, threading, time
import httpx
import emit_push._logs.shipping
from emit_push import EmitClient, LoggerOptions
from tests.waiting import wait_for

emit_push._logs.shipping.EXIT_FLUSH_SECONDS = 0.5
hang = sys.argv[1] == "hang"
hanging = threading.Event()

def handler(request):
    if request.url.path.endswith("/claim"):
        return httpx.Response(200, json={"id": "j1", "name": "n"})
    if hang:
        hanging.set()
        time.sleep(30)  # a service that never answers
    lines = gzip.decompress(request.content).splitlines()
    for line in lines:
        print(json.loads(line)["message"], flush=True)
    return httpx.Response(200, json={"accepted": len(lines)})

client = EmitClient(space_id="s", api_key="k", base_url="http://emit.test/api/v1",
                    transport=httpx.MockTransport(handler))
job = client.jobs.claim("j1", logger=LoggerOptions(flush_interval=60))
for n in range(100):
    job.log.info(f"line {n}")
if hang:  # that full batch goes out (or hangs)...
    assert hanging.wait(10)
else:
    wait_for(lambda: job.log.sent == 100, message="the first batch sent")
for n in range(100, 150):
    job.log.info(f"line {n}")  # ...and these wait for the 60 s interval
# the program ends here, the job never closed
"""


@pytest.mark.parametrize("service", ["up", "hang"])
def test_a_sync_job_never_closed_is_flushed_at_exit(tmp_path: Path, service: str) -> None:
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(_EXIT_SCRIPT))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script), service], capture_output=True, text=True, env=env,
        timeout=20,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    if service == "up":
        assert done.stdout.splitlines() == [f"line {n}" for n in range(150)]
        assert "lost" not in done.stderr
    else:  # bounded: gives up after EXIT_FLUSH_SECONDS, counting what it could not send
        assert time.monotonic() - started < 10
        assert "lost 150 log entries: the program exited" in done.stderr


def _async_client(sink: LogSink) -> AsyncEmitClient:
    return AsyncEmitClient(
        space_id="s", api_key="k", base_url=MOCK_URL, transport=httpx.MockTransport(sink),
        max_retries=0,
    )  # fmt: skip


def test_lines_still_waiting_when_the_event_loop_ends_are_sent() -> None:
    sink = LogSink()

    async def work() -> Any:
        client = _async_client(sink)
        job = await client.jobs.claim("j1", logger=LoggerOptions(flush_interval=60))
        for n in range(30):
            job.log.info(str(n))
        return job  # never closed: asyncio.run cancels the shipper's task

    job = asyncio.run(work())
    assert sink.messages() == [str(n) for n in range(30)]
    assert (job.log.sent, job.log.lost) == (30, 0)


def test_lines_that_cannot_go_when_the_event_loop_ends_are_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="emit_push")
    sink = LogSink()

    async def work() -> Any:
        async with _async_client(sink) as client:
            job = await client.jobs.claim("j1", logger=LoggerOptions(flush_interval=60))
            job.log.info("a")
            job.log.info("b")
        return job  # the client is closed: nothing can be sent any more

    job = asyncio.run(work())
    assert (job.log.sent, job.log.lost, job.log.buffered) == (0, 2, 0)
    assert "lost 2 log entries" in caplog.text


def test_a_job_used_from_a_new_event_loop_ships_there() -> None:
    sink = LogSink()
    client = _async_client(sink)

    async def first() -> Any:
        job = await client.jobs.claim("j1", logger=LoggerOptions(flush_interval=0.02))
        job.log.info("one")
        await job.aclose()
        return job

    job = asyncio.run(first())

    async def second() -> None:
        job.log.info("two")  # the first loop is closed: this one ships it
        assert await asyncio.to_thread(sink.wait_for, 2, 5.0)  # by the interval, no close
        job.log.info("three")
        await job.aclose()

    asyncio.run(second())
    assert sink.messages() == ["one", "two", "three"]
    assert (job.log.sent, job.log.lost) == (3, 0)


async def test_an_async_job_logging_from_other_threads_ships_on_its_loop() -> None:
    """Sync handlers log from worker threads: notify crosses over to the job's loop."""
    sink = LogSink()
    client = _async_client(sink)
    job = await client.jobs.claim("j1", logger=LoggerOptions(flush_interval=0.02))
    thread = threading.Thread(target=lambda: [job.log.info(str(n)) for n in range(250)])
    thread.start()
    await anyio.to_thread.run_sync(thread.join)
    assert await anyio.to_thread.run_sync(sink.wait_for, 250)
    await job.aclose()
    await client.aclose()
    assert sink.messages() == [str(n) for n in range(250)]
