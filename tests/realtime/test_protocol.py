"""The realtime protocol logic, sans I/O: URLs, cursor, backoff, close decisions, secrets."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from emit_push._exceptions import EmitError, InvalidInputError, RealtimeError
from emit_push._realtime.options import StreamOptions
from emit_push._realtime.protocol import Backoff, Outcome, RedactingLogger, Session, redact

JOB = "01JJOB0000000000000000000A"
SPACE = "01JSPACE000000000000000000"


def msg(**fields: Any) -> str:
    return json.dumps(fields)


def session(kind: str = "space", **options: Any) -> Session:
    target = JOB if kind == "job" else SPACE
    return Session(kind, target, StreamOptions(**options), rand=lambda: 1.0)  # type: ignore[arg-type]


# --- URLs -----------------------------------------------------------------------------


def test_job_stream_url() -> None:
    s = session("job")
    assert s.url("http://h:1/api/v1", None) == f"ws://h:1/api/v1/realtime/{JOB}"
    assert s.url("https://h/api/v1", "emit_k+/=") == (
        f"wss://h/api/v1/realtime/{JOB}?token=emit_k%2B%2F%3D"
    )
    assert (
        Session("job", "a/b?c", StreamOptions()).url("http://h", None)
        == "ws://h/realtime/a%2Fb%3Fc"
    )


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


@pytest.mark.parametrize("target", ["", "  ", None, 3])
def test_a_stream_needs_a_target(target: Any) -> None:
    with pytest.raises(InvalidInputError, match="job_id must be a non-empty string"):
        Session("job", target, StreamOptions())


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
