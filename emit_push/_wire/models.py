"""The wire models: snake_case in Python, camelCase on the wire.

Models read leniently (the contract's DECIDED points may differ on the real service):
fields missing from an answer take the contract's defaults, and so do fields the answer
sends as ``null`` when the field has a default (``"timeoutSeconds": null`` reads as 300, a
log line's ``"message": null`` as ""); unknown fields are kept (``model.model_extra``);
every model accepts both spellings of a field name, so a spec pasted from the service's
docs (``maxRetries``) works as well as ``max_retries``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_serializer, model_validator
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
    "SpecInput",
    "SubProgress",
    "format_timestamp",
]

LogLevel = Literal["trace", "debug", "info", "warn", "error", "fatal"]
"""The six log levels of ``POST /jobs/:id/logs``, least severe first."""


def format_timestamp(value: datetime | float) -> str:
    """The wire's timestamp (``2025-02-24T10:30:00.000Z``) for a datetime or a POSIX time.

    A naive datetime is local time, as ``datetime.timestamp()`` (Python's convention)
    takes it: ``datetime.now() + timedelta(minutes=5)`` means five minutes from now.
    """
    if isinstance(value, datetime):
        value = value.timestamp()
    millis = round(value * 1000)
    seconds, millis = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class _Wire(BaseModel):
    # defer_build: schemas are built on first use, not at import (cold starts on Lambda).
    model_config = ConfigDict(
        populate_by_name=True, extra="allow", alias_generator=to_camel, defer_build=True
    )

    @model_validator(mode="before")
    @classmethod
    def _null_takes_the_default(cls, data: Any) -> Any:
        # A null where the field has a (non-null) default reads as that default: the shape
        # of answers is DECIDED, and a service that writes `"maxRetries": null` means "unset".
        if isinstance(data, dict) and None in data.values():
            defaulted = _defaulted(cls)
            data = {k: v for k, v in data.items() if v is not None or k not in defaulted}
        return data


@functools.cache
def _defaulted(model: type[BaseModel]) -> frozenset[str]:
    """The names (both spellings) of ``model``'s fields whose default is not None."""
    return frozenset(
        name
        for field_name, info in model.model_fields.items()
        if not info.is_required() and info.get_default(call_default_factory=True) is not None
        for name in (field_name, info.alias or field_name)
    )


class JobSpec(_Wire):
    """One job to create; ``client.jobs.create`` also takes a plain mapping of these fields.

    ``scheduled_for`` takes a datetime or an ISO-8601 string, which is sent as given. A
    naive datetime is local time, as ``datetime.timestamp()`` takes it (Python's
    convention): ``datetime.now() + timedelta(minutes=5)`` is five minutes from now,
    whatever the machine's time zone. Aware datetimes are converted to UTC. Fields left as
    None are not sent, so the service's defaults apply.

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


SpecInput = JobSpec | Mapping[str, Any]
"""A job spec: a :class:`JobSpec`, or a mapping with snake_case or camelCase keys."""


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
    """What ``GET /jobs/:id/progress`` answers; ``progress`` is None before any report.

    ``job_id`` comes from the answer, or from the request when the answer leaves it out.
    """

    job_id: str = ""
    status: str | None = None
    progress: Progress | None = None


class LogEntry(_Wire):
    """One log line. ``seq`` is set by the service on the lines it returns."""

    level: str
    message: str = ""
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
