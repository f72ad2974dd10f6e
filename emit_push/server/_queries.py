"""The read side: jobs, their events, progress, logs and per-status counts."""

from __future__ import annotations

import sqlite3
from typing import Any

from ._errors import ApiError, bad_request, not_found
from ._ids import format_ts
from ._schemas import LEVELS
from ._wire import STATUSES, job_document, loads

__all__ = [
    "EVENTS_DEFAULT",
    "EVENTS_MAX",
    "EVENTS_PAGE_BYTES",
    "LOGS_PAGE_BYTES",
    "Reader",
    "load_job",
]

EVENTS_DEFAULT = 100
"""Events in a ``GET /jobs/:id`` unless ``eventsLimit`` says otherwise (the latest ones)."""
EVENTS_MAX = 1000
EVENTS_PAGE_BYTES = 4 * 1024 * 1024
"""A page of events stops before its event data passes this (it holds one event at least)."""
LOGS_PAGE_BYTES = 4 * 1024 * 1024
"""A page of logs stops before its messages and metadata pass this (one line at least)."""


def load_job(db: sqlite3.Connection, job_id: str, space_id: str | None) -> dict[str, Any]:
    """The job's row; 404 when unknown, 403 when it belongs to another space."""
    row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise not_found(job_id)
    if space_id is not None and row["space_id"] != space_id:
        raise ApiError(403, "forbidden", "API key does not belong to this job's space")
    return dict(row)


class Reader:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def job(
        self,
        job_id: str,
        space_id: str,
        *,
        events: int = EVENTS_DEFAULT,
        before: str | None = None,
    ) -> dict[str, Any]:
        """The job with the latest ``events`` events of its history (before that event id).

        The page is bounded twice: by count, and by :data:`EVENTS_PAGE_BYTES` of event data
        (a history written by an older server may hold events of megabytes), so one read
        never loads a whole history. Events come oldest first; ``eventsCursor`` is the id to
        pass as ``eventsBefore`` for the page before, null when there is none.
        """
        document = job_document(load_job(self.db, job_id, space_id))
        query = "SELECT * FROM job_events WHERE job_id = ?"
        args: tuple[Any, ...] = (job_id,)
        if before is not None:
            query += " AND id < ?"
            args += (before,)
        rows: list[sqlite3.Row] = []
        size = 0
        cursor = None
        for row in self.db.execute(query + " ORDER BY id DESC LIMIT ?", (*args, events + 1)):
            size += len(row["data"])
            if len(rows) == events or (rows and size > EVENTS_PAGE_BYTES):
                cursor = rows[-1]["id"]
                break
            rows.append(row)
        document["events"] = [
            {
                "id": row["id"],
                "type": row["type"],
                "data": loads(row["data"]),
                "attemptNumber": row["attempt_number"],
                "createdAt": format_ts(row["created_at"]),
            }
            for row in reversed(rows)
        ]
        document["eventsCursor"] = cursor
        return document

    def jobs(
        self,
        space_id: str,
        status: str | None,
        limit: int,
        offset: int,
        before: str | None = None,
    ) -> list[Any]:
        """A page of the space's jobs, newest first, ``offset`` jobs on (or after the job
        ``before``, a cursor that costs nothing however deep).

        The page is found in an index alone (``jobs_by_space`` or ``jobs_by_age``), and only
        its rows are read: a deep ``offset`` skips index entries, not whole jobs.
        """
        where = "space_id = ?"
        args: list[Any] = [space_id]
        if status is not None:
            where += " AND status = ?"
            args.append(status)
        if before is not None:
            row = self.db.execute(
                "SELECT created_at FROM jobs WHERE id = ? AND space_id = ?", (before, space_id)
            ).fetchone()
            if row is None:
                raise bad_request("before: no job of this space has that id")
            where += " AND (created_at, id) < (?, ?)"
            args += [row["created_at"], before]
        order = " ORDER BY created_at DESC, id DESC"
        query = (
            f"SELECT * FROM jobs WHERE rowid IN (SELECT rowid FROM jobs WHERE {where}{order}"
            f" LIMIT ? OFFSET ?){order}"
        )
        rows = self.db.execute(query, (*args, limit, offset)).fetchall()
        return [job_document(row) for row in rows]

    def progress(self, job_id: str, space_id: str | None) -> dict[str, Any]:
        job = load_job(self.db, job_id, space_id)
        return {"jobId": job_id, "status": job["status"], "progress": loads(job["progress"])}

    def logs(
        self,
        job_id: str,
        space_id: str,
        *,
        after: int | None,
        before: int | None,
        limit: int,
        level: str | None,
        q: str | None,
    ) -> dict[str, Any]:
        load_job(self.db, job_id, space_id)
        query = "SELECT * FROM job_logs WHERE job_id = ?"
        args: list[Any] = [job_id]
        if after is not None:
            query += " AND seq > ?"
            args.append(after)
        if before is not None:
            query += " AND seq < ?"
            args.append(before)
        if level is not None:
            query += " AND level >= ?"
            args.append(LEVELS.index(level))
        if q:
            query += " AND instr(lower(message), lower(?)) > 0"
            args.append(q)
        rows: list[sqlite3.Row] = []
        size = 0
        more = False
        for row in self.db.execute(query + " ORDER BY seq LIMIT ?", (*args, limit + 1)):
            size += len(row["message"]) + len(row["metadata"] or "")
            if len(rows) == limit or (rows and size > LOGS_PAGE_BYTES):
                more = True
                break
            rows.append(row)
        return {
            "logs": [
                {
                    "seq": row["seq"],
                    "ts": format_ts(row["ts"]),
                    "level": LEVELS[row["level"]],
                    "message": row["message"],
                    "source": row["source"],
                    "metadata": loads(row["metadata"]),
                }
                for row in rows
            ],
            "nextCursor": rows[-1]["seq"] if more else None,
        }

    def counts(self, space_id: str) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for status, n in self.db.execute(
            "SELECT status, COUNT(*) FROM jobs WHERE space_id = ? GROUP BY status", (space_id,)
        ):
            counts[status] = n
        return counts
