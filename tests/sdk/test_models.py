"""Wire models: both spellings in, camelCase out, unknown fields kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from emit_push import JobDescriptor, JobDetails, JobSpec, LogPage
from emit_push._models import format_timestamp


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
    naive = datetime(2030, 1, 2, 3, 4, 5)
    assert JobSpec(name="n", scheduled_for=naive).to_wire()["scheduledFor"] == (
        "2030-01-02T03:04:05.000Z"
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
