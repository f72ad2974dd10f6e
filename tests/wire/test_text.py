"""Text UTF-8 cannot hold, written out: one rule for request bodies, errors, answers, logs.

A lone surrogate (``os.fsdecode`` of a file name that is not UTF-8) cannot be sent: each
is written out as plain text, a byte as ``\\xff``, any other as ``\\ud800``. Values that
encode are sent exactly as before, without being searched.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import pydantic
import pydantic_core
import pytest

from emit_push import InvalidInputError, JobDetails, PushResult
from emit_push._exceptions import error_message, escape_surrogates
from emit_push._logs.batch import Batch
from emit_push._wire import calls
from emit_push._wire import endpoints as ep
from emit_push._wire.calls import encode_json, jsonable, without_surrogates

FILE = os.fsdecode(b"report-\xff.csv")  # a Linux file name that is not UTF-8
WRITTEN = "report-\\xff.csv"  # the byte, written out: 15 plain characters


def _sent(value: Any) -> Any:
    """What the service reads from ``encode_json(value)``, decoded as strict UTF-8."""
    return json.loads(encode_json(value).decode("utf-8"))


@pytest.mark.parametrize(
    ("text", "written"),
    [
        (FILE, WRITTEN),
        (os.fsdecode(b"\x80\xfe"), "\\x80\\xfe"),  # U+DC80, U+DCFE: bytes
        ("\ud800", "\\ud800"),  # a high surrogate alone
        ("\udbff\udc7f", "\\udbff\\udc7f"),  # U+DC7F is no byte os.fsdecode writes
        ("a \ud83d b", "a \\ud83d b"),  # half of an emoji
        ("plain ünïcödé ✓ \U0001f600", "plain ünïcödé ✓ \U0001f600"),  # untouched
        ("", ""),
    ],
)
def test_each_lone_surrogate_is_written_out(text: str, written: str) -> None:
    assert escape_surrogates(text) == written
    assert written.encode("utf-8").decode("utf-8") == written


def test_text_that_encodes_is_returned_as_it_is() -> None:
    text = "nothing to do ✓"
    assert escape_surrogates(text) is text


def test_a_string_and_a_key_are_sent_written_out() -> None:
    assert _sent(FILE) == WRITTEN
    assert _sent({FILE: FILE, "ok": 1}) == {WRITTEN: WRITTEN, "ok": 1}


def test_nested_containers_are_walked() -> None:
    value = {"a": [FILE, (FILE, {"deep": [FILE]})], "b": {FILE: {FILE: None}}, 3: FILE}
    assert _sent(value) == {
        "a": [WRITTEN, [WRITTEN, {"deep": [WRITTEN]}]],
        "b": {WRITTEN: {WRITTEN: None}},
        "3": WRITTEN,
    }
    assert _sent({"set": {FILE}, "frozen": frozenset({"\ud800"})}) == {
        "set": [WRITTEN],
        "frozen": ["\\ud800"],
    }


class Report(pydantic.BaseModel):
    file_name: str = pydantic.Field(alias="fileName")
    sizes: dict[str, int] = {}


@dataclasses.dataclass
class Listing:
    folder: str
    files: list[str]


def test_models_and_dataclasses_are_walked_as_they_are_written() -> None:
    report = Report(fileName=FILE, sizes={FILE: 3})
    assert _sent(report) == {"fileName": WRITTEN, "sizes": {WRITTEN: 3}}  # by alias
    assert _sent({"r": report, "l": Listing(FILE, [FILE])}) == {
        "r": {"fileName": WRITTEN, "sizes": {WRITTEN: 3}},
        "l": {"folder": WRITTEN, "files": [WRITTEN]},
    }


def test_values_that_encode_are_not_searched(monkeypatch: pytest.MonkeyPatch) -> None:
    def searched(value: Any) -> Any:
        raise AssertionError("a value that encodes was searched")

    monkeypatch.setattr(calls, "without_surrogates", searched)
    value = {"name": "plain ✓", "list": [1, 2.5, None, True], "model": Report(fileName="x")}
    assert encode_json(value) == pydantic_core.to_json(value)
    assert jsonable(value) == pydantic_core.to_jsonable_python(value)


def test_a_value_that_is_not_json_is_refused_saying_why() -> None:
    with pytest.raises(InvalidInputError, match="cannot send as JSON: Unable to serialize"):
        encode_json({"handle": object()})
    # Written out, it is still no JSON: the error says that, not the surrogate.
    with pytest.raises(InvalidInputError, match="cannot send as JSON: Unable to serialize"):
        encode_json({FILE: object()})
    cycle: list[Any] = [FILE]
    cycle.append(cycle)
    with pytest.raises(InvalidInputError, match="cannot send as JSON"):
        encode_json(cycle)


def test_jsonable_never_fails_on_a_lone_surrogate() -> None:
    # to_jsonable_python encodes keys (and fails on such a one); strings it leaves as they
    # are, for encode_json to write out.
    with pytest.raises(UnicodeEncodeError):
        pydantic_core.to_jsonable_python({FILE: 1})
    assert jsonable({FILE: 1, "file": FILE}) == {WRITTEN: 1, "file": WRITTEN}
    assert jsonable([FILE]) == [FILE]
    assert _sent(jsonable([FILE])) == [WRITTEN]
    with pytest.raises(pydantic_core.PydanticSerializationError, match="Unable to serialize"):
        jsonable({FILE: object()})


def test_without_surrogates_copies_and_keeps_what_it_does_not_know() -> None:
    value = {"list": [FILE], "tuple": (FILE,), "n": 1}
    copy = without_surrogates(value)
    assert copy == {"list": [WRITTEN], "tuple": (WRITTEN,), "n": 1}
    assert value["list"] == [FILE]  # the caller's value is left as it was
    marker = object()
    assert without_surrogates(marker) is marker


def test_error_messages_are_written_out() -> None:
    assert error_message(RuntimeError(FILE)) == f"RuntimeError: {WRITTEN}"
    # An OSError names its file by repr, which writes the surrogate out its own way.
    assert error_message(OSError(2, "No such file", FILE)) == (
        "FileNotFoundError: [Errno 2] No such file: 'report-\\udcff.csv'"
    )
    assert error_message(f"bad {FILE}") == f"bad {WRITTEN}"
    assert error_message(ValueError("\ud800")) == "ValueError: \\ud800"
    assert error_message(ValueError()) == "ValueError"

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert error_message(Unprintable()) == "Unprintable: <unprintable Unprintable object>"


def test_worker_calls_send_such_text_written_out() -> None:
    def body(call: ep.Call[Any]) -> Any:
        assert call.content is not None
        return json.loads(call.content.decode("utf-8"))

    assert body(ep.fail("j", RuntimeError(FILE))) == {"error": f"RuntimeError: {WRITTEN}"}
    assert body(ep.complete("j", {"file": FILE})) == {"result": {"file": WRITTEN}}
    assert body(ep.progress("j", 5, FILE, {FILE: {"percent": 5}})) == {
        "percent": 5,
        "message": WRITTEN,
        "subProgress": {WRITTEN: {"percent": 5}},
    }
    assert body(ep.checkpoint("j", {FILE: FILE})) == {WRITTEN: WRITTEN}
    assert body(ep.event("j", {"report": Report(fileName=FILE)})) == {
        "report": {"fileName": WRITTEN, "sizes": {}}
    }
    assert body(ep.kill("j", FILE)) == {"reason": WRITTEN}
    assert json.loads(ep.ndjson_body([{"level": "info", "message": FILE}])) == {
        "level": "info",
        "message": WRITTEN,
    }


def test_a_fail_with_such_text_is_confirmed_by_its_stored_event() -> None:
    # The service stores what was sent: the read-back matches the message as written out.
    stored = f"RuntimeError: {WRITTEN}"
    events = [{"type": "dead", "data": {"error": stored}, "attemptNumber": 0}]
    job = {"id": "j", "name": "n", "status": "dead", "attemptNumber": 0, "events": events}
    confirm = ep.fail("j", RuntimeError(FILE), 0).confirm
    assert confirm is not None
    assert confirm.check(JobDetails.model_validate(job)) is not None


def test_a_push_answer_writes_such_text_out() -> None:
    result = PushResult("ignored", "j1", name=f"x{FILE}", reason="no handler for 'x' here")
    status, headers, content = result.http()
    assert (status, headers) == (200, [("content-type", "application/json")])
    assert json.loads(content.decode("utf-8")) == {
        "status": "ignored",
        "jobId": "j1",
        "name": f"x{WRITTEN}",
        "reason": "no handler for 'x' here",
    }
    failed = PushResult("failed", "j1", error=FILE, attempt_number=2)
    assert json.loads(failed.http()[2]) == {
        "status": "failed",
        "jobId": "j1",
        "attemptNumber": 2,
        "error": WRITTEN,
    }
    refused = PushResult.refused(400, "invalid_push", f"bad {FILE}")
    assert refused.http()[:1] == (400,)
    assert json.loads(refused.http()[2]) == {"error": f"bad {WRITTEN}", "code": "invalid_push"}


def test_an_answer_that_encodes_is_written_as_before() -> None:
    result = PushResult("completed", "j1", name="naïve ✓")
    assert result.http()[2] == '{"status":"completed","jobId":"j1","name":"naïve ✓"}'.encode()


def test_log_lines_follow_the_same_rule() -> None:
    source = FILE * 20  # a long source is cut after it is written out
    batch = Batch([(0.0, "info", FILE, {FILE: "\ud800"}, source)], 0, 100)
    (line,) = batch.decoded()
    assert (line["message"], line["metadata"]) == (WRITTEN, {WRITTEN: "\\ud800"})
    assert line["source"] == (WRITTEN * 20)[:255]
