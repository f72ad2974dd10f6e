"""What the realtime streams deliver: typed events, read leniently (contract §8).

Every message is an envelope ``{"type", "jobId", "status", "data", "timestamp"}``; the
space stream adds ``jobName`` and ``seq`` and opens with ``connected``. The types whose
``data`` has a shape come as subclasses that read it into typed fields (the raw ``data``
stays): ``InitEvent.progress`` and ``.job``, ``ProgressEvent.progress``,
``LogsEvent.logs``, ``RetriedEvent.error`` and ``.attempt_number``, ``DeadEvent.error``,
``KilledEvent.reason``, ``CompletedEvent.result``; ``Connected`` has the cursor. Types
the SDK does not know (a new one of the service's) are delivered as ``RealtimeEvent``s
like any other, unknown fields are kept (``event.model_extra``), and a known field in a
shape the SDK cannot read is left at its default with a warning rather than losing the
event.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from pydantic import ValidationError, model_validator

from .._wire.models import JobDetails, Progress, Status, _Wire

__all__ = [
    "TERMINAL_TYPES",
    "CompletedEvent",
    "Connected",
    "DeadEvent",
    "InitEvent",
    "KilledEvent",
    "LogRange",
    "LogsEvent",
    "ProgressEvent",
    "RealtimeClose",
    "RealtimeEvent",
    "RetriedEvent",
    "parse_event",
]

TERMINAL_TYPES = frozenset({"completed", "dead", "killed"})
"""Event types (and job statuses) after which a job changes no more."""

log = logging.getLogger("emit_push")


class RealtimeEvent(_Wire):
    """One message of a job or space stream.

    ``type`` is ``init``, ``created``, ``progress``, ``completed``... or any type the
    service adds; ``data`` depends on it (``progress``: the report, ``completed``: the
    result, ``logs``: ``{"fromSeq", "toSeq", "count"}``). ``job_name`` and ``seq`` come
    with the space stream only.

        async for event in client.realtime.job(job_id):
            if event.type == "progress":
                print(event.data["percent"], event.data["message"])
    """

    type: str
    job_id: str | None = None
    status: Status | None = None
    """The job's status after the event (a ``JobStatus``; any string the service sends)."""
    data: Any = None
    timestamp: datetime | None = None
    job_name: str | None = None
    seq: int | None = None

    @property
    def terminal(self) -> bool:
        """Whether the job is finished after this event (completed, dead or killed)."""
        return self.type in TERMINAL_TYPES


class Connected(RealtimeEvent):
    """The first message of a space stream: the cursor, and whether events went unseen.

    ``seq`` is the stream's position and ``stream_instance_id`` the server instance that
    numbers it: pass both back (``since=``, ``stream_instance_id=``) to resume. ``missed``
    is true when the cursor given did not match (events passed, or the server restarted):
    there is no replay, so re-read what you need over HTTP. ``counts`` are the space's
    jobs per status.
    """

    seq: int = 0
    stream_instance_id: str | None = None
    missed: bool = False
    counts: dict[str, int] = {}


class _FromData(RealtimeEvent):
    """An event whose typed fields are read from its ``data`` object."""

    @model_validator(mode="before")
    @classmethod
    def _read_data(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("data"), dict):
            return {**value["data"], **value}  # the envelope's own fields win
        return value


class InitEvent(RealtimeEvent):
    """A job stream's first message: the job's status, and its progress so far.

    ``job`` is the whole job on a ``jobs:read`` view; a progress-only view gets
    ``progress`` alone.
    """

    progress: Progress | None = None
    job: JobDetails | None = None

    @model_validator(mode="before")
    @classmethod
    def _read_data(cls, value: Any) -> Any:
        data = value.get("data") if isinstance(value, dict) else None
        if not isinstance(data, dict):
            return value
        typed = {"progress": data.get("progress")}
        if "id" in data and "name" in data:  # the whole job
            typed["job"] = data
        return {**value, **typed}


class _DataAs(RealtimeEvent):
    """An event whose ``data`` object is read whole into one typed field, ``_field``."""

    _field: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _read_data(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("data"), dict):
            return {**value, cls._field: value["data"]}
        return value


class ProgressEvent(_DataAs):
    """``progress``: the job's latest report, typed.

    if isinstance(event, ProgressEvent) and event.progress:
        print(f"{event.progress.percent:.0f}% {event.progress.message}")
    """

    progress: Progress | None = None
    _field = "progress"


class LogRange(_Wire):
    """Which log lines a ``logs`` event announces: read them with ``jobs.logs``."""

    from_seq: int | None = None
    to_seq: int | None = None
    count: int = 0


class LogsEvent(_DataAs):
    """``logs``: lines were stored; ``logs`` says which (``after=from_seq - 1``)."""

    logs: LogRange | None = None
    _field = "logs"


class RetriedEvent(_FromData):
    """``retried``: the attempt failed and the job will run again."""

    error: str | None = None
    attempt_number: int | None = None
    """The attempt that comes next."""


class DeadEvent(_FromData):
    """``dead``: the last attempt failed; the job runs no more."""

    error: str | None = None


class KilledEvent(_FromData):
    """``killed``: the job was stopped for good."""

    reason: str | None = None


class CompletedEvent(RealtimeEvent):
    """``completed``: ``result`` is the job's result (absent on a progress-only view)."""

    @property
    def result(self) -> Any:
        return self.data


_TYPES: dict[str, type[RealtimeEvent]] = {
    "connected": Connected,
    "init": InitEvent,
    "progress": ProgressEvent,
    "logs": LogsEvent,
    "retried": RetriedEvent,
    "dead": DeadEvent,
    "killed": KilledEvent,
    "completed": CompletedEvent,
}


@dataclass(frozen=True, slots=True)
class RealtimeClose:
    """How a stream's WebSocket closed, as ``on_close`` receives it.

    ``code`` is the WebSocket close code (1000 normal, 1006 lost, 1012 server restart,
    4401 bad token, 4403 forbidden, 4404 unknown job); ``reconnect_in`` is the number of
    seconds before the next attempt, or None when the stream ends here.
    """

    code: int
    reason: str
    reconnect_in: float | None = None


def parse_event(message: str | bytes) -> RealtimeEvent | None:
    """The event in one WebSocket message; None (and a warning) when it holds none."""
    try:
        data = json.loads(message)
    except ValueError:  # UnicodeDecodeError included
        log.warning("realtime: dropped a message that is not JSON")
        return None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        log.warning("realtime: dropped a message without a type")
        return None
    model = _TYPES.get(data["type"], RealtimeEvent)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        unreadable = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        log.warning(
            "realtime: %s event: left unreadable fields at their defaults: %s",
            data["type"],
            ", ".join(sorted(unreadable)),
        )
    readable = {k: v for k, v in data.items() if k not in unreadable}
    try:
        return model.model_validate(readable)
    except ValidationError:  # its typed fields cannot read ``data``: the event, untyped
        return RealtimeEvent.model_validate(readable)
