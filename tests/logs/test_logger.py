"""The batched job logger: the buffer (pure), then shipping through both clients."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import os
import threading
from typing import Any

import anyio
import httpx
import pytest

from emit_push import BadRequestError, ConfigurationError, LoggerOptions, ServerError
from emit_push._exceptions import NotFoundError
from emit_push._logs.logger import START, WAKE, LogBuffer
from tests.sdk.conftest import Sdk
from tests.waiting import eventually

# -- the buffer, pure ----------------------------------------------------------------


def _entry(n: int) -> tuple[float, str, Any, Any, str | None]:
    return (1_700_000_000.0 + n, "info", str(n), None, None)


def _messages(body: bytes) -> list[str]:
    return [json.loads(line)["message"] for line in body.splitlines()]


def test_the_buffer_signals_start_then_full_batches() -> None:
    buffer = LogBuffer(LoggerOptions(max_batch_size=3))
    signals = [buffer.add(_entry(n)) for n in range(7)]
    assert signals == [START, 0, WAKE, 0, 0, WAKE, 0]
    assert not buffer.retire()  # entries wait: the shipper stays
    while buffer.take():
        pass
    assert buffer.retire()
    assert buffer.add(_entry(8)) == START


def test_a_full_buffer_does_not_wake_the_shipper_for_every_entry() -> None:
    buffer = LogBuffer(LoggerOptions(max_batch_size=100, max_buffered_entries=200))
    signals = [buffer.add(_entry(n)) for n in range(250)]
    assert [n for n, signal in enumerate(signals) if signal] == [0, 99, 199]  # START, WAKEs
    assert buffer.dropped == 50


def test_overflow_drops_the_oldest_and_reports_it_in_the_next_batch() -> None:
    buffer = LogBuffer(LoggerOptions(max_batch_size=100, max_buffered_entries=200))
    for n in range(250):
        buffer.add(_entry(n))
    assert (len(buffer), buffer.dropped) == (200, 50)
    batch = buffer.take()
    assert batch is not None
    lines = [json.loads(line) for line in batch.encode().splitlines()]
    assert lines[0] == {
        "ts": "2023-11-14T22:14:10.000Z",  # the first kept entry's: placed where the gap is
        "level": "warn",
        "message": "emit-push dropped 50 log entries: more than 200 were waiting to be sent",
        "source": "emit-push",
        "metadata": {"droppedEntries": 50},
    }
    assert lines[0]["ts"] == lines[1]["ts"]
    assert [line["message"] for line in lines[1:]] == [str(n) for n in range(50, 150)]
    second = buffer.take()
    assert second is not None
    assert second.dropped == 0
    assert _messages(second.encode()) == [str(n) for n in range(150, 250)]


def test_a_failed_batch_goes_back_in_front_within_the_cap() -> None:
    buffer = LogBuffer(LoggerOptions(max_batch_size=10, max_buffered_entries=20))
    for n in range(20):
        buffer.add(_entry(n))
    batch = buffer.take()
    assert batch is not None
    for n in range(20, 35):
        buffer.add(_entry(n))  # 25 buffered: 5 dropped (10..14)
    assert buffer.dropped == 5
    assert not buffer.settle(batch, ServerError("down", status=503))  # retryable: put back
    assert (len(buffer), buffer.dropped) == (20, 15)  # 0..9 back in front, then dropped
    first = buffer.take()
    assert first is not None
    assert first.dropped == 15
    assert _messages(first.encode())[1:] == [str(n) for n in range(15, 25)]
    assert buffer.settle(first, NotFoundError("gone", status=404))  # refused: counted lost
    assert (buffer.lost, buffer.sent) == (10, 0)


def test_a_batch_refused_whole_is_split_until_the_bad_entry_is_found() -> None:
    buffer = LogBuffer(LoggerOptions(max_batch_size=8))
    for n in range(10):
        buffer.add(_entry(n))
    refused = BadRequestError("line 6.message: too long", status=400)
    sent: list[str] = []
    while (batch := buffer.take()) is not None:
        messages = _messages(batch.encode())
        if "5" in messages:  # the service refuses any batch holding entry 5
            assert buffer.settle(batch, refused)  # not put back for later: goes on at once
        else:
            sent += messages
            assert buffer.settle(batch, None)
    assert sent == [str(n) for n in range(10) if n != 5]  # in order, all but the bad one
    assert (buffer.sent, buffer.lost, len(buffer)) == (9, 1, 0)
    assert buffer.retire()


def test_a_batch_refused_for_itself_is_not_split() -> None:
    buffer = LogBuffer(LoggerOptions(max_batch_size=8))
    for n in range(8):
        buffer.add(_entry(n))
    batch = buffer.take()
    assert batch is not None
    assert buffer.settle(batch, BadRequestError("unsupported content type", status=400))
    assert buffer.take() is None  # one request, not one for every line
    assert buffer.lost == 8


def test_a_half_that_must_be_retried_goes_out_before_the_next_half() -> None:
    buffer = LogBuffer(LoggerOptions(max_batch_size=8))
    for n in range(8):
        buffer.add(_entry(n))
    whole = buffer.take()
    assert whole is not None
    assert buffer.settle(whole, BadRequestError("line 7.source: too long", status=400))
    first = buffer.take()
    assert first is not None
    assert not buffer.settle(first, ServerError("down", status=503))  # put back, in front
    sent: list[str] = []
    while (batch := buffer.take()) is not None:
        sent += _messages(batch.encode())
        buffer.settle(batch, None)
    assert sent == [str(n) for n in range(8)]


def test_oversized_fields_are_cut_so_that_the_entry_still_ships() -> None:
    buffer = LogBuffer(LoggerOptions())
    buffer.add((0.0, "info", "m" * 100_000, {"blob": "b" * 100_000}, "s" * 1000))
    batch = buffer.take()
    assert batch is not None
    [line] = batch.decoded()
    assert len(line["source"]) == 255
    assert len(line["message"]) <= 32_768
    assert line["message"].endswith("characters cut]")
    assert line["metadata"]["truncated"] > 100_000  # the size of the JSON that was cut
    assert line["metadata"]["json"].startswith('{"blob":"bbb')


def test_a_source_is_cut_as_it_is_sent() -> None:
    buffer = LogBuffer(LoggerOptions())
    undecodable = os.fsdecode(b"\xff") * 300  # each sent as the 4 characters \xff
    buffer.add((0.0, "info", "m", None, undecodable))
    batch = buffer.take()
    assert batch is not None
    [line] = batch.decoded()
    assert len(line["source"]) == 255
    assert line["source"].startswith("\\xff\\xff")


def test_lines_are_valid_json_whatever_is_logged() -> None:
    buffer = LogBuffer(LoggerOptions())
    odd: list[Any] = [{1: "int key"}, {"nan": float("nan")}, {"obj": object()}, "not a dict", None]
    for n, metadata in enumerate(odd):
        buffer.add((0.0, "info", n, metadata, "src" if n else None))
    batch = buffer.take()
    assert batch is not None
    lines = [json.loads(line) for line in batch.encode().splitlines()]
    assert [line["message"] for line in lines] == ["0", "1", "2", "3", "4"]
    assert lines[0]["metadata"] == {"1": "int key"}
    assert "repr" in lines[1]["metadata"]
    assert lines[2]["metadata"]["obj"].startswith("<object")
    assert lines[3]["metadata"] == {"value": "not a dict"}
    assert "metadata" not in lines[4]
    assert "source" not in lines[0]
    assert lines[1]["source"] == "src"
    assert lines[0]["ts"] == "1970-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    "options",
    [
        {"flush_interval": 0},
        {"max_batch_size": 0},
        {"max_batch_size": 20, "max_buffered_entries": 10},
    ],
)
def test_options_are_checked(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        LoggerOptions(**options)


# -- shipping, both clients, against a mock ------------------------------------------


class LogSink:
    """A mock emit: claim answers a job, logs are stored (or refused on demand)."""

    def __init__(self) -> None:
        self.batches: list[tuple[httpx.Headers, list[dict[str, Any]]]] = []
        self.lines: list[dict[str, Any]] = []
        self.refuse = 0  # answer this many log requests with `status`
        self.status = 503
        self.headers: dict[str, str] = {}  # sent with refusals
        self.refused = 0
        self._arrived = threading.Condition()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/claim"):
            return httpx.Response(200, json={"id": "j1", "name": "n"})
        with self._arrived:
            if self.refuse:
                self.refuse -= 1
                self.refused += 1
                body = {"error": "no", "code": "no"}
                return httpx.Response(self.status, headers=self.headers, json=body)
            body = request.content
            if request.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            self.batches.append((request.headers, lines))
            self.lines += lines
            self._arrived.notify_all()
        return httpx.Response(200, json={"accepted": len(lines), "firstSeq": 1, "lastSeq": 1})

    def wait_for(self, count: int, timeout: float = 10) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.lines) >= count, timeout)

    def messages(self) -> list[str]:
        return [line["message"] for line in self.lines if line.get("source") != "emit-push"]


async def _job(sdk: Sdk, sink: LogSink, **options: Any) -> Any:
    client = sdk.mock(sink, max_retries=0)
    return await sdk(client.jobs.claim("j1", logger=LoggerOptions(**options)))


async def test_batches_are_gzipped_ndjson(offline: Sdk) -> None:
    sink = LogSink()
    job = await _job(offline, sink)
    job.log.info("hello", metadata={"a": 1}, source="unit")
    await offline.close(job)
    [(headers, lines)] = sink.batches
    assert headers["content-type"] == "application/x-ndjson"
    assert headers["content-encoding"] == "gzip"
    assert lines[0]["message"] == "hello"
    assert (lines[0]["level"], lines[0]["metadata"], lines[0]["source"]) == (
        "info",
        {"a": 1},
        "unit",
    )
    plain = await _job(offline, sink, gzip=False, source="default-src")
    plain.log.error("raw")
    await offline.close(plain)
    headers, [line] = sink.batches[1]
    assert "content-encoding" not in headers
    assert (line["level"], line["source"]) == ("error", "default-src")


async def test_a_full_batch_is_sent_without_waiting_for_the_interval(offline: Sdk) -> None:
    sink = LogSink()
    job = await _job(offline, sink, flush_interval=60, max_batch_size=10)
    for n in range(35):
        job.log.info(str(n))
    assert await anyio.to_thread.run_sync(sink.wait_for, 30)  # long before the 60 s interval
    await offline.close(job)
    assert sink.messages() == [str(n) for n in range(35)]
    assert all(len(lines) <= 10 for _, lines in sink.batches)


async def test_the_interval_flushes_what_waits(offline: Sdk) -> None:
    sink = LogSink()
    job = await _job(offline, sink, flush_interval=0.05)
    job.log.debug("one")
    job.log.trace("two")
    assert await anyio.to_thread.run_sync(sink.wait_for, 2)  # no close
    assert sink.messages() == ["one", "two"]
    assert (job.log.sent, job.log.buffered) == (2, 0)
    job.log.fatal("three")  # the shipper retired; a new one starts
    assert await anyio.to_thread.run_sync(sink.wait_for, 3)
    await offline.close(job)
    assert [line["level"] for line in sink.lines] == ["debug", "trace", "fatal"]


async def test_failed_sends_are_retried_in_order(offline: Sdk) -> None:
    sink = LogSink()
    sink.refuse = 2  # each refusal backs the shipper off longer: two keep the test short
    job = await _job(offline, sink, flush_interval=0.02, max_batch_size=5)
    for n in range(12):
        job.log.info(str(n))
    assert await anyio.to_thread.run_sync(sink.wait_for, 12)
    await offline.close(job)
    assert sink.messages() == [str(n) for n in range(12)]
    assert (job.log.sent, job.log.dropped, job.log.lost) == (12, 0, 0)


async def test_overflow_is_counted_and_reported_and_the_rest_arrives(offline: Sdk) -> None:
    sink = LogSink()
    sink.refuse = 10**9  # the service is down while the job logs
    job = await _job(
        offline,
        sink,
        flush_interval=0.01,
        max_batch_size=100,
        max_buffered_entries=300,
        echo_level=None,  # the producer at full speed: far faster than the shipper
    )
    for n in range(1000):
        job.log.info(str(n))
    sink.refuse = 0
    await offline.close(job)
    dropped = job.log.dropped
    assert dropped >= 600  # at most the cap plus one batch in flight survive
    assert sink.messages() == [str(n) for n in range(dropped, 1000)]  # the oldest went
    reports = [line for line in sink.lines if line.get("source") == "emit-push"]
    assert sink.lines[0] is reports[0]  # the first batch says so first
    assert sum(r["metadata"]["droppedEntries"] for r in reports) == dropped
    assert (job.log.sent, job.log.lost) == (1000 - dropped, 0)


async def test_the_logger_never_raises_and_counts_what_it_loses(
    offline: Sdk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="emit_push")
    sink = LogSink()
    sink.refuse, sink.status = 1, 404  # the service refuses the batch outright
    job = await _job(offline, sink, flush_interval=60)
    job.log.info("refused")
    await offline.close(job)
    assert (job.log.lost, job.log.sent) == (1, 0)
    assert "lost 1 log entries" in caplog.text
    sink.refuse, sink.status = 10**9, 503  # unreachable at close
    job.log.info("a")
    job.log.warning("b", metadata={"x": object()})
    await offline.close(job)
    assert (job.log.lost, job.log.buffered) == (3, 0)
    assert "unreachable at close" in caplog.text


async def test_entries_from_other_threads_arrive(offline: Sdk) -> None:
    sink = LogSink()
    job = await _job(offline, sink, flush_interval=0.02, max_batch_size=10)

    def work(worker: int) -> None:
        for n in range(50):
            job.log.info(f"{worker}:{n}")

    async with anyio.create_task_group() as tg:
        for worker in range(4):
            tg.start_soon(anyio.to_thread.run_sync, work, worker)
    assert await anyio.to_thread.run_sync(sink.wait_for, 200)
    await offline.close(job)
    by_worker = [[m for m in sink.messages() if m.startswith(f"{w}:")] for w in range(4)]
    assert by_worker == [[f"{w}:{n}" for n in range(50)] for w in range(4)]  # each in order


async def test_closing_a_job_ends_its_shipper(offline: Sdk) -> None:
    """The sync job's thread, or the async job's task, is gone once the job is closed."""
    sink = LogSink()
    job = await _job(offline, sink, flush_interval=60)

    def shippers() -> list[str]:
        if offline.is_async:
            return [t.get_name() for t in asyncio.all_tasks() if not t.done()]
        return [t.name for t in threading.enumerate()]

    job.log.info("x")
    await eventually(lambda: "emit-log-j1" in shippers())  # waiting out the 60 s interval
    await offline.close(job)
    assert "emit-log-j1" not in shippers()
    assert sink.messages() == ["x"]


# -- against the live server -----------------------------------------------------------


async def test_every_line_arrives_in_order(sdk: Sdk) -> None:
    client = sdk.client()
    await sdk(client.jobs.create({"name": "chatty"}))
    [job] = await sdk(client.jobs.poll(types="chatty"))
    await sdk(job.ack())
    for n in range(1234):
        job.log.info(f"line {n}", metadata={"n": n})
    await sdk(job.complete())
    job.log.info("after complete")
    await sdk.close(job)
    seen: list[str] = []
    after = None
    while True:
        page = await sdk(job.get_logs(after=after, limit=1000))
        seen += [e.message for e in page.logs]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert seen == [f"line {n}" for n in range(1234)] + ["after complete"]
    assert (job.log.sent, job.log.dropped, job.log.lost) == (1235, 0, 0)


async def test_an_oversized_line_is_cut_and_costs_no_other_line(sdk: Sdk) -> None:
    client = sdk.client()
    await sdk(client.jobs.create({"name": "chatty"}))
    [job] = await sdk(client.jobs.poll(types="chatty"))
    for n in range(50):
        # The local server takes at most 5 MiB a request: this line alone was more.
        job.log.info("x" * 6_000_000 if n == 20 else f"line {n}", metadata={"n": n})
    await sdk.close(job)
    page = await sdk(job.get_logs(limit=1000))
    messages = [entry.message for entry in page.logs]
    assert messages[:20] + messages[21:] == [f"line {n}" for n in range(50) if n != 20]
    assert messages[20].startswith("xxx")
    assert messages[20].endswith("characters cut]")
    assert (job.log.sent, job.log.lost) == (50, 0)
