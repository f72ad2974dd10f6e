"""The read side: jobs, their events, progress, logs and per-status counts."""

from __future__ import annotations

import sqlite3
from typing import Any

from ._errors import ApiError, not_found
from ._ids import format_ts
from ._schemas import LEVELS
from ._wire import STATUSES, job_document, loads

__all__ = ["Reader", "load_job"]


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

    def job(self, job_id: str, space_id: str) -> dict[str, Any]:
        document = job_document(load_job(self.db, job_id, space_id))
        rows = self.db.execute(
            "SELECT * FROM job_events WHERE job_id = ? ORDER BY id", (job_id,)
        ).fetchall()
        document["events"] = [
            {
                "id": row["id"],
                "type": row["type"],
                "data": loads(row["data"]),
                "attemptNumber": row["attempt_number"],
                "createdAt": format_ts(row["created_at"]),
            }
            for row in rows
        ]
        return document

    def jobs(self, space_id: str, status: str | None, limit: int, offset: int) -> list[Any]:
        query = "SELECT * FROM jobs WHERE space_id = ?"
        args: list[Any] = [space_id]
        if status is not None:
            query += " AND status = ?"
            args.append(status)
        query += " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
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
        rows = self.db.execute(query + " ORDER BY seq LIMIT ?", (*args, limit + 1)).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
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
