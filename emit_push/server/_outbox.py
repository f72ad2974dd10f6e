"""The outbox: the pushes and callbacks that job changes queue, and each space's push settings.

A push (``job.pending``) is queued when a job becomes pending in a space whose push
settings want its name; a callback when a job that has a ``callback_url`` finishes. The
engine calls in here inside the transaction of the change that causes them, so a change
and what it sends commit together. The scheduler sends the rows later, and the engine
records each attempt, which settles its row: dropped, or kept for a retry (a callback not
answered 200; a push not answered 2xx while its job is pending, DECIDED: ``_delivery``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from ._ids import format_ts
from ._records import PushSettings
from ._wire import dumps

__all__ = ["Outbox"]

Job = dict[str, Any]


class Outbox:
    """Writes outbox rows in the caller's transaction; ``due`` is told when each is due."""

    def __init__(self, db: sqlite3.Connection, due: Callable[[int], None]) -> None:
        self.db = db
        self._due = due
        self.push: dict[str, PushSettings] = {}

    def push_pending(self, job: Job, now: int) -> bool:
        """Queue a ``job.pending`` push if the job's space wants one; returns whether it did."""
        settings = self.push.get(job["space_id"])
        if settings is None or not settings.wants(job["name"]):
            return False
        body = {
            "type": "job.pending",
            "jobId": job["id"],
            "spaceId": job["space_id"],
            "name": job["name"],
            "attemptNumber": job["attempt_number"],
            "timestamp": format_ts(now),
        }
        self._add(job, "push", now, dumps(body), None, None)
        return True

    def repush(self, space_id: str, now: int) -> int:
        """Queue a push for each of the space's pending jobs, oldest first; returns how many."""
        rows = self.db.execute(
            "SELECT * FROM jobs WHERE space_id = ? AND status = 'pending' ORDER BY created_at, id",
            (space_id,),
        ).fetchall()
        return sum(self.push_pending(dict(row), now) for row in rows)

    def callback(self, job: Job, result: Any, now: int) -> None:
        """Queue the callback of a job that has just finished, when it has a URL."""
        if not job["callback_url"]:
            return
        body = {
            "jobId": job["id"],
            "spaceId": job["space_id"],
            "name": job["name"],
            "status": job["status"],
            "attemptNumber": job["attempt_number"],
            "result": result,
            "timestamp": format_ts(now),
        }
        headers = job["callback_headers"] or "{}"
        self._add(job, "callback", now, dumps(body), job["callback_url"], headers)

    def _add(
        self, job: Job, kind: str, now: int, body: str, url: str | None, headers: str | None
    ) -> None:
        self.db.execute(
            "INSERT INTO outbox (kind, job_id, space_id, due_at, url, headers, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (kind, job["id"], job["space_id"], now, url, headers, body),
        )
        self._due(now)

    def settle(self, outbox_id: int, retry_at: int | None) -> None:
        """An attempt was made: drop its row, or keep it for another attempt at ``retry_at``."""
        if retry_at is None:
            self.db.execute("DELETE FROM outbox WHERE id = ?", (outbox_id,))
        else:
            self.db.execute(
                "UPDATE outbox SET due_at = ?, attempt = attempt + 1 WHERE id = ?",
                (retry_at, outbox_id),
            )
            self._due(retry_at)

    def save_push(self, space_id: str, settings: PushSettings) -> None:
        """Write a space's push settings in the caller's transaction (``push`` is the caller's)."""
        names = None if settings.job_names is None else dumps(sorted(settings.job_names))
        self.db.execute(
            "UPDATE spaces SET push_url = ?, push_headers = ?, push_job_names = ? WHERE id = ?",
            (settings.url, dumps(settings.headers or {}), names, space_id),
        )
