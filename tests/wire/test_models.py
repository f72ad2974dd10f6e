"""Wire models: both spellings in, camelCase out, unknown fields kept, nulls forgiven."""

from __future__ import annotations

import json
import time
import typing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from emit_push import (
    JobDescriptor,
    JobDetails,
    JobProgress,
    JobRef,
    JobSpec,
    JobState,
    LogPage,
    UnexpectedResponseError,
)
from emit_push._realtime.events import parse_event
from emit_push._wire.models import JobStatus, format_timestamp
from tests.sdk.conftest import Sdk


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is New York (not UTC, as on most CI machines)."""
    if not hasattr(time, "tzset"):
        pytest.skip("needs time.tzset")
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_spec_takes_snake_or_camel_keys_and_writes_camel() -> None:
    snake = JobSpec.model_validate(
        {"name": "n", "max_retries": 2, "timeout_seconds": 9, "callback_headers": {"a": "b"}}
    )
    camel = JobSpec.model_validate(
        {"name": "n", "maxRetries": 2, "timeoutSeconds": 9, "callbackHeaders": {"a": "b"}}
    )
    assert snake == camel
    assert snake.to_wire() == {
        "name": "n", "maxRetries": 2, "timeoutSeconds": 9, "callbackHeaders": {"a": "b"},
    }  # fmt: skip


def test_scheduled_for_takes_datetimes_and_strings() -> None:
    aware = datetime(2030, 1, 2, 3, 4, 5, 678900, tzinfo=timezone(timedelta(hours=2)))
    assert JobSpec(name="n", scheduled_for=aware).to_wire()["scheduledFor"] == (
        "2030-01-02T01:04:05.679Z"
    )
    naive = datetime(2030, 1, 2, 3, 4, 5)  # local time, as datetime.timestamp() has it
    assert JobSpec(name="n", scheduled_for=naive).to_wire()["scheduledFor"] == (
        naive.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    )
    text = "2030-01-02T03:04:05+01:00"
    assert JobSpec.model_validate({"name": "n", "scheduledFor": text}).to_wire() == {
        "name": "n", "scheduledFor": text,
    }  # fmt: skip


def test_unknown_fields_are_kept_both_ways() -> None:
    spec = JobSpec.model_validate({"name": "n", "priority": 5})
    assert spec.to_wire() == {"name": "n", "priority": 5}
    job = JobDetails.model_validate_json(
        '{"id": "j", "name": "n", "status": "running", "newThing": [1]}'
    )
    assert job.model_extra == {"newThing": [1]}
    assert (job.max_retries, job.timeout_seconds, job.events) == (3, 300, [])


def test_answers_parse_the_wire_timestamps() -> None:
    d = JobDescriptor.model_validate(
        {"id": "j", "name": "n", "createdAt": "2025-02-24T10:30:00.000Z", "attemptNumber": 2}
    )
    assert d.created_at == datetime(2025, 2, 24, 10, 30, tzinfo=UTC)
    assert d.attempt_number == 2
    page = LogPage.model_validate_json(
        '{"logs": [{"seq": 1, "ts": "2025-02-24T10:30:00.123Z", "level": "info",'
        ' "message": "m", "source": null, "metadata": null}], "nextCursor": null}'
    )
    assert page.logs[0].ts == datetime(2025, 2, 24, 10, 30, 0, 123000, tzinfo=UTC)


def test_format_timestamp() -> None:
    assert format_timestamp(0.0) == "1970-01-01T00:00:00.000Z"
    assert format_timestamp(1.9996) == "1970-01-01T00:00:02.000Z"
    assert format_timestamp(datetime(2025, 2, 24, 10, 30, tzinfo=UTC)) == "2025-02-24T10:30:00.000Z"


async def test_a_naive_scheduled_for_is_local_time(offline: Sdk, new_york: None) -> None:
    when = (datetime.now() + timedelta(hours=2)).replace(microsecond=250_000)
    expected = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.250Z")
    assert JobSpec(name="n", scheduled_for=when).to_wire()["scheduledFor"] == expected
    sent: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(201, json={"id": "j1", "status": "scheduled"})

    client = offline.mock(handler)
    await offline(client.jobs.create({"name": "later", "scheduled_for": when}))
    assert sent == [{"name": "later", "scheduledFor": expected}]


async def test_nulls_in_answers_read_as_the_defaults(offline: Sdk) -> None:
    answers = {
        "/claim": {
            "id": "j1", "name": "n", "payload": None, "timeoutSeconds": None,
            "maxRetries": None, "attemptNumber": None, "createdAt": None,
        },
        "/jobs/j1": {
            "id": "j1", "name": "n", "status": "running", "maxRetries": None,
            "attemptNumber": None, "timeoutSeconds": None, "events": None,
        },
        "/progress": {"status": "running", "progress": None},  # no jobId
        "/logs": {"logs": [{"seq": 1, "level": "info", "message": None}], "nextCursor": None},
        "/ack": {"id": None, "status": "running", "attemptNumber": None},
        "/jobs": {"id": "j2", "spaceId": None},
    }  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        suffix = next(s for s in answers if path.endswith(s))
        if suffix == "/logs" and request.method == "POST":
            return httpx.Response(200, json={"accepted": None, "firstSeq": None, "lastSeq": None})
        return httpx.Response(200, json=answers[suffix])

    client = offline.mock(handler)
    job = await offline(client.jobs.claim("j1"))
    assert (job.timeout_seconds, job.max_retries, job.attempt_number) == (300, 3, 0)
    details = await offline(client.jobs.get("j1"))
    assert (details.max_retries, details.attempt_number, details.events) == (3, 0, [])
    progress = await offline(client.jobs.get_progress("j1"))
    assert (progress.job_id, progress.status, progress.progress) == ("j1", "running", None)
    [line] = (await offline(client.jobs.logs("j1"))).logs
    assert (line.seq, line.message) == (1, "")
    state = await offline(job.ack())
    assert (state.id, state.status, state.attempt_number) == ("j1", "running", None)
    accepted = await offline(client.jobs.append_logs("j1", [{"level": "info", "message": "m"}]))
    assert (accepted.accepted, accepted.last_seq) == (0, None)
    ref = await offline(client.jobs.create({"name": "n"}))
    assert (ref.id, ref.space_id) == ("j2", client.space_id)
    await offline.close(job)


# -- the open shapes: read in each known form, or raise ---------------------------------

LINE = {"seq": 1, "level": "info", "message": "a"}


async def _read(offline: Sdk, read: str, answer: httpx.Response) -> Any:
    client = offline.mock(lambda request: answer, max_retries=0)
    if read == "logs":
        return await offline(client.jobs.logs("j1"))
    return await offline(client.jobs.get_progress("j1"))


@pytest.mark.parametrize(
    "answer",
    [
        {"logs": [LINE], "nextCursor": 1},  # the contract's shape
        {"lines": [LINE], "nextCursor": 1},
        {"logs": None, "lines": [LINE], "nextCursor": 1},
        [LINE],  # a bare list: no cursor
    ],
)
async def test_a_page_of_logs_reads_in_each_known_shape(offline: Sdk, answer: Any) -> None:
    page = await _read(offline, "logs", httpx.Response(200, json=answer))
    assert isinstance(page, LogPage)
    assert [(line.seq, line.level, line.message) for line in page.logs] == [(1, "info", "a")]
    assert page.next_cursor == (None if isinstance(answer, list) else 1)


REPORT = {"percent": 40, "message": "encoding", "subProgress": {"a": {"percent": 10}}}


@pytest.mark.parametrize(
    ("answer", "job_id", "status"),
    [
        ({"jobId": "j1", "status": "running", "progress": REPORT}, "j1", "running"),
        ({"jobId": "j1", "status": "running", **REPORT}, "j1", "running"),  # flat
        (REPORT, "j1", None),  # flat, alone: the job id is the request's
        ({"progress": 40, "message": "encoding", "subProgress": REPORT["subProgress"]}, "j1", None),
        ({"jobId": "j2", "progress": None, **REPORT}, "j2", None),
    ],
)
async def test_a_progress_reads_nested_or_flat(
    offline: Sdk, answer: dict[str, Any], job_id: str, status: str | None
) -> None:
    read = await _read(offline, "progress", httpx.Response(200, json=answer))
    assert isinstance(read, JobProgress)
    assert (read.job_id, read.status) == (job_id, status)
    assert read.progress is not None
    assert (read.progress.percent, read.progress.message) == (40, "encoding")
    assert read.progress.sub_progress is not None
    assert read.progress.sub_progress["a"].percent == 10


async def test_no_progress_yet_reads_as_none(offline: Sdk) -> None:
    for answer in [{"jobId": "j1", "status": "pending", "progress": None}, {"status": "pending"}]:
        read = await _read(offline, "progress", httpx.Response(200, json=answer))
        assert (read.job_id, read.status, read.progress) == ("j1", "pending", None)


NO_BODY = object()


@pytest.mark.parametrize(
    ("read", "status", "body", "said"),
    [
        ("logs", 200, {}, "an object with no keys"),
        ("logs", 200, {"entries": [LINE]}, "an object with 'entries'"),
        ("logs", 200, {"lines": "a\nb"}, "logs"),
        ("logs", 200, {"lines": [{"message": "no level"}]}, "level"),
        ("logs", 200, "a\nb", "JSON str"),
        ("logs", 200, NO_BODY, "an empty body"),
        ("progress", 200, {}, "an object with no keys"),
        ("progress", 200, {"pct": 40}, "an object with 'pct'"),
        ("progress", 200, [REPORT], "JSON list"),
        ("progress", 200, {"progress": "half"}, "progress"),
        ("progress", 200, {"progress": {"message": "m"}}, "percent"),
        ("progress", 204, NO_BODY, "an empty body"),
    ],
)
async def test_an_unreadable_open_shape_raises_rather_than_reading_empty(
    offline: Sdk, read: str, status: int, body: Any, said: str
) -> None:
    answer = httpx.Response(status) if body is NO_BODY else httpx.Response(status, json=body)
    with pytest.raises(UnexpectedResponseError, match="cannot read the answer") as caught:
        await _read(offline, read, answer)
    assert said in f"{caught.value} {caught.value.__cause__}"  # pydantic's words: the cause
    assert caught.value.status == status


# -- statuses: the contract's Literal for type checkers, any string at run time ---------


def test_job_status_is_the_contracts_seven() -> None:
    assert typing.get_args(JobStatus) == (
        "scheduled", "pending", "delivered", "running", "completed", "dead", "killed",
    )  # fmt: skip


def test_an_unknown_status_is_kept_not_refused() -> None:
    """A newer service's status reads as its string; only a non-string is refused."""
    details = JobDetails.model_validate({"id": "j1", "name": "n", "status": "paused"})
    assert details.status == "paused"
    assert JobState.model_validate({"id": "j1", "status": "archived"}).status == "archived"
    assert JobRef.model_validate({"id": "j1", "spaceId": "s", "status": "queued"}).status == (
        "queued"
    )
    assert JobProgress.model_validate({"status": "paused"}).status == "paused"
    event = parse_event(json.dumps({"type": "paused", "jobId": "j1", "status": "paused"}))
    assert event is not None
    assert (event.type, event.status) == ("paused", "paused")
    assert details.model_dump(mode="json")["status"] == "paused"
    with pytest.raises(ValidationError, match="a status is a string"):
        JobDetails.model_validate({"id": "j1", "name": "n", "status": 3})
