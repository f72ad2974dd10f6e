"""What the realtime streams deliver: typed events, read leniently (contract §8).

Every message is an envelope ``{"type", "jobId", "status", "data", "timestamp"}``; the
space stream adds ``jobName`` and ``seq`` and opens with ``connected``. Types the SDK does
not know (the local server's ``push_sent``, a new one of the service's) are delivered as
``RealtimeEvent``s like any other, unknown fields are kept (``event.model_extra``), and a
known field in a shape the SDK cannot read is left at its default with a warning rather
than losing the event.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ._models import _Wire

__all__ = ["TERMINAL_TYPES", "Connected", "RealtimeClose", "RealtimeEvent", "parse_event"]

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
    status: str | None = None
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
    model = Connected if data["type"] == "connected" else RealtimeEvent
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        unreadable = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        log.warning(
            "realtime: %s event: left unreadable fields at their defaults: %s",
            data["type"],
            ", ".join(sorted(unreadable)),
        )
    try:
        return model.model_validate({k: v for k, v in data.items() if k not in unreadable})
    except ValidationError:  # pragma: no cover - every field left has a default
        return None
