"""The wire models: snake_case in Python, camelCase on the wire.

Models read leniently (the contract's DECIDED points may differ on the real service):
fields missing from an answer take the contract's defaults, and so do fields the answer
sends as ``null`` when the field has a default (``"timeoutSeconds": null`` reads as 300, a
log line's ``"message": null`` as ""); unknown fields are kept (``model.model_extra``);
every model accepts both spellings of a field name, so a spec pasted from the service's
docs (``maxRetries``) works as well as ``max_retries``. The shapes the contract leaves
open read in each of their known forms: a page of logs under ``logs`` or ``lines`` (or
a bare list), a progress nested under ``progress`` or flat (``{percent, message}``).

A job's ``status`` is typed :data:`JobStatus`, the contract's seven, so that mypy catches
``job.status == "complete"``; at run time a status the contract does not list (a newer
service's) is kept as its string, never refused.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainValidator, field_serializer, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "JobDescriptor",
    "JobDetails",
    "JobEvent",
    "JobProgress",
    "JobRef",
    "JobSpec",
    "JobState",
    "JobStatus",
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

JobStatus = Literal["scheduled", "pending", "delivered", "running", "completed", "dead", "killed"]
"""A job's status (contract §2); the last three are terminal.

The wire models read any string here (see ``Status``): type checkers see these seven."""


def _any_status(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("a status is a string")  # pydantic reports a ValueError
    return value


Status = Annotated[JobStatus, PlainValidator(_any_status)]
"""A :data:`JobStatus` to type checkers, any string at run time: a status the contract
does not list yet (a newer service's) is kept, not refused (the client reads leniently)."""


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
    status: Status | None = None
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
    status: Status
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
    status: Status | None = None
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


_PROGRESS_FIELDS = ("percent", "message", "subProgress", "sub_progress", "updatedAt", "updated_at")


class JobProgress(_Wire):
    """What ``GET /jobs/:id/progress`` answers; ``progress`` is None before any report.

    ``job_id`` comes from the answer, or from the request when the answer leaves it out.
    The report reads nested (``{"progress": {"percent", "message"...}}``, the contract's
    shape) or flat (``{"percent", "message"...}`` beside ``jobId`` and ``status``); a bare
    number as ``progress`` is its percent.
    """

    job_id: str = ""
    status: Status | None = None
    progress: Progress | None = None

    @model_validator(mode="before")
    @classmethod
    def _flat_progress(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        nested = data.get("progress")
        if isinstance(nested, int | float) and not isinstance(nested, bool):
            report = {k: data[k] for k in _PROGRESS_FIELDS if k in data}
            return {**data, "progress": {**report, "percent": nested}}
        if nested is None and data.get("percent") is not None:
            report = {k: data[k] for k in _PROGRESS_FIELDS if k in data}
            rest = {k: v for k, v in data.items() if k not in _PROGRESS_FIELDS}
            return {**rest, "progress": report}
        return data


class LogEntry(_Wire):
    """One log line. ``seq`` is set by the service on the lines it returns."""

    level: str
    message: str = ""
    ts: datetime | None = None
    source: str | None = None
    metadata: dict[str, Any] | None = None
    seq: int | None = None


class LogPage(_Wire):
    """A page of a job's logs, oldest first; pass ``next_cursor`` as ``after`` for more.

    The lines read from ``logs`` (the contract's shape), ``lines``, or a bare list.
    """

    logs: list[LogEntry] = []
    next_cursor: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _other_shapes(cls, data: Any) -> Any:
        if isinstance(data, list):
            return {"logs": data}
        if isinstance(data, dict) and data.get("logs") is None and data.get("lines") is not None:
            return {k: v for k, v in data.items() if k not in ("lines", "logs")} | {
                "logs": data["lines"]
            }
        return data


class LogsAccepted(_Wire):
    """What appending logs answers: how many lines were stored, and their ``seq`` range."""

    accepted: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
