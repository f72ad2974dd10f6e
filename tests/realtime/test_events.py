"""The realtime events, sans I/O: each message read into its typed event, leniently."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from emit_push import Progress
from emit_push._realtime.events import (
    CompletedEvent,
    Connected,
    DeadEvent,
    InitEvent,
    KilledEvent,
    LogRange,
    LogsEvent,
    ProgressEvent,
    RealtimeEvent,
    RetriedEvent,
    parse_event,
)

JOB = "01JJOB0000000000000000000A"


def msg(**fields: Any) -> str:
    return json.dumps(fields)


def test_an_envelope_reads_into_a_typed_event() -> None:
    message = msg(
        type="progress",
        jobId=JOB,
        status="running",
        jobName="resize",
        seq=7,
        data={"percent": 5, "message": "m"},
        timestamp="2025-02-24T10:30:00.000Z",
    )
    event = parse_event(message)
    assert isinstance(event, ProgressEvent)
    envelope = (event.type, event.job_id, event.status, event.job_name, event.seq)
    assert envelope == ("progress", JOB, "running", "resize", 7)
    assert event.timestamp == datetime(2025, 2, 24, 10, 30, tzinfo=UTC)
    assert event.data == {"percent": 5, "message": "m"}  # the raw data stays
    assert event.progress == Progress(percent=5, message="m")
    assert not event.terminal


def test_a_full_init_carries_the_job() -> None:
    job = {"id": JOB, "name": "resize", "status": "running", "progress": {"percent": 3}}
    event = parse_event(msg(type="init", jobId=JOB, status="running", data=job))
    assert isinstance(event, InitEvent)
    assert event.job is not None
    assert (event.job.id, event.job.name, event.job.status) == (JOB, "resize", "running")
    assert event.progress == Progress(percent=3)


@pytest.mark.parametrize(
    ("message", "kind", "typed"),
    [
        (
            msg(type="init", status="running", data={"progress": {"percent": 9}}),
            InitEvent,
            {"progress": Progress(percent=9), "job": None},
        ),
        (
            msg(type="init", status="pending", data={"progress": None}),
            InitEvent,
            {"progress": None},
        ),
        (
            msg(type="logs", data={"fromSeq": 4, "toSeq": 6, "count": 3}),
            LogsEvent,
            {"logs": LogRange(from_seq=4, to_seq=6, count=3)},
        ),
        (
            msg(type="retried", data={"error": "E: x", "attemptNumber": 2}),
            RetriedEvent,
            {"error": "E: x", "attempt_number": 2},
        ),
        (msg(type="dead", data={"error": "E: x"}), DeadEvent, {"error": "E: x"}),
        (msg(type="killed", data={"reason": "stop"}), KilledEvent, {"reason": "stop"}),
        (msg(type="completed", data=[1, 2]), CompletedEvent, {"result": [1, 2]}),
        (msg(type="checkpoint", data={"step": 1}), RealtimeEvent, {"data": {"step": 1}}),
        # A type the SDK does not know (the service added one): delivered all the same.
        (
            msg(type="brand_new", data={"x": 1}, extra=True),
            RealtimeEvent,
            {"type": "brand_new", "data": {"x": 1}, "model_extra": {"extra": True}},
        ),
        # Data in a shape the typed fields cannot read: the event still comes, untyped.
        (
            msg(type="progress", data={"percent": "lots"}),
            RealtimeEvent,
            {"data": {"percent": "lots"}},
        ),
    ],
)
def test_each_type_reads_its_data_into_typed_fields(
    message: str, kind: type[RealtimeEvent], typed: dict[str, Any]
) -> None:
    event = parse_event(message)
    assert type(event) is kind
    assert {name: getattr(event, name) for name in typed} == typed


@pytest.mark.parametrize("kind", ["completed", "dead", "killed"])
def test_terminal_events(kind: str) -> None:
    event = parse_event(msg(type=kind, jobId=JOB))
    assert event is not None
    assert event.terminal


def test_connected_reads_into_its_own_model() -> None:
    message = msg(
        type="connected",
        seq=3,
        streamInstanceId="I1",
        missed=True,
        counts={"pending": 2},
        timestamp="2025-02-24T10:30:00.000Z",
    )
    event = parse_event(message)
    assert isinstance(event, Connected)
    cursor = (event.seq, event.stream_instance_id, event.missed, event.counts)
    assert cursor == (3, "I1", True, {"pending": 2})


def test_unknown_types_and_fields_are_kept() -> None:
    event = parse_event(msg(type="push_failed", jobId=JOB, data={"error": "x"}, extra=1))
    assert event is not None
    assert (event.type, event.data, event.model_extra) == (
        "push_failed",
        {"error": "x"},
        {"extra": 1},
    )


def test_a_known_field_in_an_odd_shape_is_left_at_its_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = parse_event(msg(type="progress", jobId=JOB, timestamp="yesterday", seq="x", data=1))
    assert event is not None
    read = (event.type, event.job_id, event.timestamp, event.seq, event.data)
    assert read == ("progress", JOB, None, None, 1)
    assert "seq, timestamp" in caplog.text


@pytest.mark.parametrize("raw", [b"\xff", "not json", "[1]", msg(type=3), msg(jobId=JOB)])
def test_messages_without_an_event_are_dropped(
    raw: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    assert parse_event(raw) is None
    assert "realtime: dropped" in caplog.text
