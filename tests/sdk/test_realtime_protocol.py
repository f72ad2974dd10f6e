"""The realtime protocol logic, sans I/O: parsing, cursor, backoff, close decisions."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from emit_push import Progress
from emit_push._exceptions import EmitError, InvalidInputError
from emit_push._realtime_models import (
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
from emit_push._realtime_protocol import (
    Backoff,
    Outcome,
    RealtimeError,
    RedactingLogger,
    Session,
    redact,
)

JOB = "01JJOB0000000000000000000A"
SPACE = "01JSPACE000000000000000000"


def msg(**fields: Any) -> str:
    return json.dumps(fields)


def session(kind: str = "space", **options: Any) -> Session:
    options.setdefault("rand", lambda: 1.0)  # no jitter: delays are exact
    return Session(kind, JOB if kind == "job" else SPACE, **options)  # type: ignore[arg-type]


# --- events ---------------------------------------------------------------------------


def test_an_envelope_reads_into_a_typed_event() -> None:
    event = parse_event(
        msg(
            type="progress",
            jobId=JOB,
            status="running",
            jobName="resize",
            seq=7,
            data={"percent": 5, "message": "m"},
            timestamp="2025-02-24T10:30:00.000Z",
        )  # fmt: skip
    )
    assert isinstance(event, ProgressEvent)
    assert (event.type, event.job_id, event.status, event.job_name, event.seq) == (
        "progress", JOB, "running", "resize", 7,
    )  # fmt: skip
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
        (msg(type="init", status="running", data={"progress": {"percent": 9}}), InitEvent,
         {"progress": Progress(percent=9), "job": None}),
        (msg(type="init", status="pending", data={"progress": None}), InitEvent,
         {"progress": None}),
        (msg(type="logs", data={"fromSeq": 4, "toSeq": 6, "count": 3}), LogsEvent,
         {"logs": LogRange(from_seq=4, to_seq=6, count=3)}),
        (msg(type="retried", data={"error": "E: x", "attemptNumber": 2}), RetriedEvent,
         {"error": "E: x", "attempt_number": 2}),
        (msg(type="dead", data={"error": "E: x"}), DeadEvent, {"error": "E: x"}),
        (msg(type="killed", data={"reason": "stop"}), KilledEvent, {"reason": "stop"}),
        (msg(type="completed", data=[1, 2]), CompletedEvent, {"result": [1, 2]}),
        (msg(type="checkpoint", data={"step": 1}), RealtimeEvent, {"data": {"step": 1}}),
        # A type the SDK does not know (the service added one): delivered all the same.
        (msg(type="brand_new", data={"x": 1}, extra=True), RealtimeEvent,
         {"type": "brand_new", "data": {"x": 1}, "model_extra": {"extra": True}}),
        # Data in a shape the typed fields cannot read: the event still comes, untyped.
        (msg(type="progress", data={"percent": "lots"}), RealtimeEvent,
         {"data": {"percent": "lots"}}),
    ],
)  # fmt: skip
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
    event = parse_event(
        msg(
            type="connected",
            seq=3,
            streamInstanceId="I1",
            missed=True,
            counts={"pending": 2},
            timestamp="2025-02-24T10:30:00.000Z",
        )  # fmt: skip
    )
    assert isinstance(event, Connected)
    assert (event.seq, event.stream_instance_id, event.missed, event.counts) == (
        3, "I1", True, {"pending": 2},
    )  # fmt: skip


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
    assert (event.type, event.job_id, event.timestamp, event.seq, event.data) == (
        "progress", JOB, None, None, 1,
    )  # fmt: skip
    assert "seq, timestamp" in caplog.text


@pytest.mark.parametrize("raw", [b"\xff", "not json", "[1]", msg(type=3), msg(jobId=JOB)])
def test_messages_without_an_event_are_dropped(
    raw: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    assert parse_event(raw) is None
    assert "realtime: dropped" in caplog.text


# --- URLs -----------------------------------------------------------------------------


def test_job_stream_url() -> None:
    s = session("job")
    assert s.url("http://h:1/api/v1", None) == f"ws://h:1/api/v1/realtime/{JOB}"
    assert s.url("https://h/api/v1", "emit_k+/=") == (
        f"wss://h/api/v1/realtime/{JOB}?token=emit_k%2B%2F%3D"
    )
    assert Session("job", "a/b?c").url("http://h", None) == "ws://h/realtime/a%2Fb%3Fc"


def test_space_stream_url_carries_the_cursor() -> None:
    s = session()
    assert s.url("http://h", "k") == f"ws://h/realtime/spaces/{SPACE}?token=k"
    s.received(msg(type="connected", seq=4, streamInstanceId="I1", missed=False))
    assert s.url("http://h", "k") == (
        f"ws://h/realtime/spaces/{SPACE}?token=k&since=4&streamInstanceId=I1"
    )
    s.received(msg(type="created", jobId=JOB, seq=5))
    assert "since=5&" in s.url("http://h", "k")
    resumed = session(since=0, stream_instance_id="I0")
    assert resumed.url("http://h", None).endswith("?since=0&streamInstanceId=I0")


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"since": -1}, "since must be an integer >= 0"),
        ({"since": True}, "since must be an integer >= 0"),
        ({"since": "3"}, "since must be an integer >= 0"),
        ({"stream_instance_id": 3}, "stream_instance_id must be a string"),
        ({"reconnect_delay": 0}, "reconnect_delay must be a positive number"),
        ({"reconnect_delay": float("nan")}, "reconnect_delay must be a positive number"),
        ({"max_reconnect_delay": "1"}, "max_reconnect_delay must be a number"),
    ],
)
def test_invalid_options_are_refused_at_once(options: dict[str, Any], error: str) -> None:
    with pytest.raises(InvalidInputError, match=error):
        session(**options)


@pytest.mark.parametrize("target", ["", "  ", None, 3])
def test_a_stream_needs_a_target(target: Any) -> None:
    with pytest.raises(InvalidInputError, match="job_id must be a non-empty string"):
        Session("job", target)


# --- the cursor -----------------------------------------------------------------------


def test_the_cursor_follows_connected_and_every_event() -> None:
    s = session(since=2, stream_instance_id="OLD")
    assert (s.seq, s.stream_instance_id, s.missed) == (2, "OLD", None)
    s.received(msg(type="connected", seq=9, streamInstanceId="NEW", missed=True))
    assert (s.seq, s.stream_instance_id, s.missed) == (9, "NEW", True)
    s.received(msg(type="created", jobId=JOB, seq=10))
    s.received(msg(type="push_sent", jobId=JOB))  # no seq: the cursor stays
    assert s.seq == 10
    s.received(msg(type="connected", seq=10, streamInstanceId="NEW", missed=False))
    assert s.missed is False


def test_a_job_stream_ignores_seq() -> None:
    s = session("job")
    s.received(msg(type="init", jobId=JOB, seq=3))
    assert s.seq is None


# --- backoff --------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(1.0, 8.0, lambda: 1.0)
    assert [backoff.next() for _ in range(6)] == [1, 2, 4, 8, 8, 8]
    assert backoff.failures == 6
    backoff.reset()
    assert (backoff.next(), backoff.failures) == (1, 1)


def test_backoff_jitter_takes_the_upper_half() -> None:
    low = Backoff(2.0, 8.0, lambda: 0.0)
    assert [low.next() for _ in range(4)] == [1, 2, 4, 4]


def test_backoff_survives_very_long_outages() -> None:
    backoff = Backoff(1.0, 15.0, lambda: 1.0)
    for _ in range(5000):
        backoff.next()
    assert backoff.next() == 15


def test_a_cap_below_the_delay_is_the_delay() -> None:
    assert session(reconnect_delay=5, max_reconnect_delay=1).backoff.maximum == 5


def test_the_backoff_resets_at_the_first_message_of_a_connection() -> None:
    s = session(auto_reconnect=True, reconnect_delay=1, max_reconnect_delay=8)
    assert [s.closed(1006, "").delay for _ in range(3)] == [1, 2, 4]
    s.opened()
    assert s.closed(1011, "").delay == 8  # accepted, then closed at once: no reset
    s.opened()
    s.received(msg(type="connected", seq=0, streamInstanceId="I"))
    assert s.closed(1012, "").delay == 1


# --- close decisions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code", "finished", "auto", "expected"),
    [
        ("job", 1000, False, True, "end"),  # the server ended the stream
        ("job", 1006, True, True, "end"),  # the job had ended: nothing more to come
        ("job", 1006, False, True, "retry"),
        ("job", 1012, False, True, "retry"),
        ("job", 1011, False, True, "retry"),
        ("job", 1013, False, True, "retry"),
        ("job", 4429, False, True, "retry"),
        ("job", 4401, False, True, "fail"),
        ("job", 4403, False, True, "fail"),
        ("job", 4404, False, True, "fail"),
        ("job", 4400, False, True, "fail"),
        ("job", 1008, False, True, "fail"),
        ("job", 1006, False, False, "fail"),  # no auto_reconnect: lost is the end
        ("space", 1000, False, True, "resume"),  # a space stream has no end
        ("space", 1000, False, False, "end"),
        ("space", 1012, False, True, "retry"),
        ("space", 1012, False, False, "fail"),
        ("space", 4401, False, True, "fail"),
        ("space", 4403, False, True, "fail"),
    ],
)
def test_close_decisions(kind: str, code: int, finished: bool, auto: bool, expected: str) -> None:
    s = session(kind, auto_reconnect=auto, reconnect_delay=0.5)
    s.finished = finished
    outcome = s.closed(code, "why")
    if expected == "end":
        assert outcome == Outcome()
    elif expected == "resume":
        assert outcome == Outcome(None, 0.5)
    else:
        error = outcome.error
        assert isinstance(error, RealtimeError)
        assert isinstance(error, EmitError)
        assert (error.close_code, error.reason) == (code, "why")
        assert error.retryable is (expected == "retry") or not auto
        assert outcome.delay == error.reconnect_in == (0.5 if expected == "retry" else None)


def test_close_errors_read_well() -> None:
    s = session("job", auto_reconnect=True, reconnect_delay=2)
    error = s.closed(4404, "Job 'x' not found").error
    assert error is not None
    assert str(error) == f"job stream {JOB}: closed (4404 job_not_found): Job 'x' not found"
    assert (error.code, error.status, error.reconnect_in) == ("job_not_found", None, None)
    lost = s.closed(1006, "").error
    assert str(lost) == f"job stream {JOB}: closed (1006); reconnecting in 2.00 s"


def test_a_job_stream_of_a_finished_job_ends_after_init() -> None:
    s = session("job", auto_reconnect=True)
    s.received(msg(type="init", jobId=JOB, status="dead"))
    assert s.finished
    assert s.closed(1006, "") == Outcome()


def test_a_terminal_event_ends_the_job_stream() -> None:
    s = session("job", auto_reconnect=True)
    s.received(msg(type="init", jobId=JOB, status="running"))
    assert not s.finished
    s.received(msg(type="killed", jobId=JOB, status="killed"))
    assert s.finished


@pytest.mark.parametrize(
    ("status", "transient", "close_code", "retryable"),
    [
        (None, True, None, True),  # refused, timed out
        (None, False, None, False),  # e.g. an invalid URI
        (401, False, 4401, False),
        (403, False, 4403, False),
        (404, False, 4404, False),
        (429, False, 4429, True),
        (500, False, None, True),
        (503, False, None, True),
        (301, True, None, False),
    ],
)
def test_connect_failures(
    status: int | None, transient: bool, close_code: int | None, retryable: bool
) -> None:
    s = session(auto_reconnect=True, reconnect_delay=1)
    outcome = s.connect_failed("detail", status=status, transient=transient)
    error = outcome.error
    assert error is not None
    assert (error.close_code, error.status, error.retryable) == (close_code, status, retryable)
    assert outcome.delay == (1 if retryable else None)
    assert str(error).startswith(f"space stream {SPACE}: could not connect: detail")


def test_attempts_are_counted() -> None:
    s = session()
    s.attempt()
    s.attempt()
    assert s.attempts == 2


# --- secrets --------------------------------------------------------------------------


def test_redact_takes_out_every_form_of_the_secret() -> None:
    secret = "emit_a+b/c"
    text = f"GET /x?token=emit_a%2Bb%2Fc ({secret}) emit_a%2Bb/c"
    assert redact(text, secret) == "GET /x?token=[redacted] ([redacted]) [redacted]"
    assert redact(text, None) == text


def test_the_websockets_logger_never_writes_the_token(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.realtime.redacting")
    adapter = RedactingLogger(logger, "emit_secret")
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        adapter.debug("> GET %s HTTP/1.1", "/realtime/x?token=emit_secret")
        adapter.info("token emit_secret in the message, %d args", 1)
        adapter.debug("> %s: %s", "X-Gateway-Key", "gw_secret")
        adapter.debug("> %s: %s", "Sec-WebSocket-Version", "13")
    assert "emit_secret" not in caplog.text
    assert "gw_secret" not in caplog.text
    assert "> X-Gateway-Key: [redacted]" in caplog.text
    assert "> Sec-WebSocket-Version: 13" in caplog.text
    assert "/realtime/x?token=[redacted]" in caplog.text
    assert "token [redacted] in the message, 1 args" in caplog.text
