"""The wire models: snake_case in Python, camelCase on the wire.

Models read leniently (the contract's DECIDED points may differ on the real service):
fields missing from an answer take the contract's defaults, unknown fields are kept
(``model.model_extra``), and every model accepts both spellings of a field name, so a spec
pasted from the service's docs (``maxRetries``) works as well as ``max_retries``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_serializer
from pydantic.alias_generators import to_camel

__all__ = [
    "JobDescriptor",
    "JobDetails",
    "JobEvent",
    "JobProgress",
    "JobRef",
    "JobSpec",
    "JobState",
    "LogEntry",
    "LogLevel",
    "LogPage",
    "LogsAccepted",
    "Progress",
    "SubProgress",
    "format_timestamp",
]

LogLevel = Literal["trace", "debug", "info", "warn", "error", "fatal"]
"""The six log levels of ``POST /jobs/:id/logs``, least severe first."""


def format_timestamp(value: datetime | float) -> str:
    """The wire's timestamp (``2025-02-24T10:30:00.000Z``); naive datetimes are taken as UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.timestamp()
    millis = round(value * 1000)
    seconds, millis = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class _Wire(BaseModel):
    # defer_build: schemas are built on first use, not at import (cold starts on Lambda).
    model_config = ConfigDict(
        populate_by_name=True, extra="allow", alias_generator=to_camel, defer_build=True
    )


class JobSpec(_Wire):
    """One job to create; ``client.jobs.create`` also takes a plain mapping of these fields.

    ``scheduled_for`` takes a datetime (naive means UTC) or an ISO-8601 string, which is
    sent as given. Fields left as None are not sent, so the service's defaults apply.

        JobSpec(name="send-email", payload={"to": "a@example.com"}, max_retries=5)
    """

    name: str
    payload: Any = None
    max_retries: int | None = None
    timeout_seconds: int | None = None
    scheduled_for: datetime | str | None = None
    callback_url: str | None = None
    callback_headers: dict[str, str] | None = None

    @field_serializer("scheduled_for")
    def _serialize_scheduled_for(self, value: datetime | str | None) -> str | None:
        return format_timestamp(value) if isinstance(value, datetime) else value

    def to_wire(self) -> dict[str, Any]:
        """The JSON object sent to the service."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class JobRef(_Wire):
    """What creating a job returns: its id and space (the service adds status and URL)."""

    id: str
    space_id: str
    status: str | None = None
    realtime_url: str | None = None


class JobDescriptor(_Wire):
    """A job as poll and claim hand it to a worker."""

    id: str
    name: str
    payload: Any = None
    timeout_seconds: int = 300
    max_retries: int = 3
    attempt_number: int = 0
    created_at: datetime | None = None
    space_id: str | None = None


class JobEvent(_Wire):
    """One entry of a job's history (``created``, ``delivered``, ``retried``...)."""

    id: str | int | None = None
    type: str
    data: Any = None
    attempt_number: int | None = None
    created_at: datetime | None = None


class JobDetails(_Wire):
    """The full job, as Get Job and List Jobs return it; ``events`` only from Get Job."""

    id: str
    name: str
    status: str
    space_id: str | None = None
    payload: Any = None
    max_retries: int = 3
    attempt_number: int = 0
    timeout_seconds: int = 300
    scheduled_for: datetime | None = None
    callback_url: str | None = None
    callback_headers: dict[str, str] | None = None
    delivered_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    result: Any = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    events: list[JobEvent] = []


class JobState(_Wire):
    """What a worker call (ack, progress, complete...) answers: the job after the call."""

    id: str
    status: str | None = None
    attempt_number: int | None = None


class SubProgress(_Wire):
    """The progress of one stage of a job."""

    percent: float
    message: str | None = None


class Progress(_Wire):
    """A job's latest progress report."""

    percent: float
    message: str | None = None
    sub_progress: dict[str, SubProgress] | None = None
    updated_at: datetime | None = None


class JobProgress(_Wire):
    """What ``GET /jobs/:id/progress`` answers; ``progress`` is None before any report."""

    job_id: str
    status: str | None = None
    progress: Progress | None = None


class LogEntry(_Wire):
    """One log line. ``seq`` is set by the service on the lines it returns."""

    level: str
    message: str
    ts: datetime | None = None
    source: str | None = None
    metadata: dict[str, Any] | None = None
    seq: int | None = None


class LogPage(_Wire):
    """A page of a job's logs, oldest first; pass ``next_cursor`` as ``after`` for more."""

    logs: list[LogEntry] = []
    next_cursor: int | None = None


class LogsAccepted(_Wire):
    """What appending logs answers: how many lines were stored, and their ``seq`` range."""

    accepted: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
