"""What the server sends: job documents, worker replies and stream events."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from ._ids import format_ts

__all__ = [
    "STATUSES",
    "TERMINAL",
    "Event",
    "descriptor",
    "dumps",
    "job_document",
    "loads",
    "render",
    "ts",
    "worker_reply",
]

STATUSES = ("scheduled", "pending", "delivered", "running", "completed", "dead", "killed")
TERMINAL = frozenset({"completed", "dead", "killed"})


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def render(value: Any) -> bytes:
    """A JSON response body, byte for byte what Starlette's ``JSONResponse`` would send."""
    return dumps(value).encode()


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def ts(ms: int | None) -> str | None:
    return None if ms is None else format_ts(ms)


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened to a job: stored in its history (``history``) and sent to
    the streams (``stream``). Streams carry the types of contract §8, plus (DECIDED, local
    server) ``push_sent`` / ``push_failed`` on full views; callbacks' outcomes (§7) are
    history only."""

    type: str
    job_id: str
    space_id: str
    job_name: str
    status: str
    attempt_number: int
    data: Any
    at: int
    history: bool = True
    stream: bool = True

    def envelope(self, *, with_data: bool = True) -> dict[str, Any]:
        return {
            "type": self.type,
            "jobId": self.job_id,
            "status": self.status,
            "data": self.data if with_data else None,
            "timestamp": format_ts(self.at),
        }


def descriptor(row: sqlite3.Row | dict[str, Any]) -> dict[str, Any]:
    """What poll and claim hand to a worker."""
    return {
        "id": row["id"],
        "spaceId": row["space_id"],
        "name": row["name"],
        "payload": loads(row["payload"]),
        "timeoutSeconds": row["timeout_seconds"],
        "maxRetries": row["max_retries"],
        "attemptNumber": row["attempt_number"],
        "createdAt": format_ts(row["created_at"]),
    }


def worker_reply(row: sqlite3.Row | dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "status": row["status"], "attemptNumber": row["attempt_number"]}


def job_document(row: sqlite3.Row | dict[str, Any]) -> dict[str, Any]:
    """The full job, as Get Job and List Jobs return it (without its events)."""
    return {
        "id": row["id"],
        "spaceId": row["space_id"],
        "name": row["name"],
        "payload": loads(row["payload"]),
        "status": row["status"],
        "maxRetries": row["max_retries"],
        "attemptNumber": row["attempt_number"],
        "timeoutSeconds": row["timeout_seconds"],
        "scheduledFor": ts(row["scheduled_for"]),
        "callbackUrl": row["callback_url"],
        "callbackHeaders": loads(row["callback_headers"]),
        "deliveredAt": ts(row["delivered_at"]),
        "startedAt": ts(row["started_at"]),
        "completedAt": ts(row["completed_at"]),
        "result": loads(row["result"]),
        "progress": loads(row["progress"]),
        "checkpoint": loads(row["checkpoint"]),
        "createdAt": format_ts(row["created_at"]),
        "updatedAt": format_ts(row["updated_at"]),
    }
