"""The job lifecycle: every state change, made atomically, with its events and side effects.

Each public method is one SQLite transaction. Inside it the job row changes, its history
events are written, and a push or callback is put in the outbox (``_outbox``); only after
the commit are the events published to the realtime streams and the scheduler told of new
due times. The timer of a job lives in its row (``due_at``), and what the timer means
follows from the status: ``scheduled`` → release, ``delivered`` → delivery timeout,
``running`` → execution timeout.

Poll and claim hand a delivery to the caller, so their answer is rendered inside the
transaction (``reply``): an answer that cannot be rendered rolls the delivery back instead
of leaving a job ``delivered`` to nobody.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from ._errors import conflict
from ._ids import format_ts, new_ulid
from ._outbox import Outbox
from ._queries import load_job
from ._records import LogLine, NewJob, PushSettings
from ._store import Store
from ._wire import Event, dumps, ts

__all__ = ["Engine", "EventSink"]


class EventSink(Protocol):
    def publish(self, events: Sequence[Event]) -> None: ...

    def due(self, at_ms: int) -> None: ...


Job = dict[str, Any]
R = TypeVar("R")

_LIVE = ("scheduled", "pending", "delivered", "running")
_REARM: Any = object()  # as a due_at change: now + the job's timeout, computed in SQL


def _deliver(now: int) -> dict[str, Any]:
    return {"status": "delivered", "delivered_at": now, "started_at": None, "due_at": _REARM}


def _finish(result: Any, now: int, status: str) -> dict[str, Any]:
    return {"status": status, "completed_at": now, "result": dumps(result), "due_at": None}


_PENDING = "SELECT * FROM jobs WHERE space_id = ? AND status = 'pending'"
_OLDEST = " ORDER BY created_at, id LIMIT ?"


def _oldest_pending(
    space_id: str, count: int, names: list[str] | None
) -> tuple[str, tuple[Any, ...]]:
    """The query of poll: the ``count`` oldest pending jobs, of these names if given.

    Each name is read from its own index range (``jobs_by_name``), ``count`` rows at most,
    and the ranges merged: an ``IN`` list would walk every pending job in age order until
    enough matched, and the jobs of other names may be many.
    """
    if names is None:
        return _PENDING + _OLDEST, (space_id, count)
    unique = list(dict.fromkeys(names))
    arm = f"SELECT * FROM ({_PENDING} AND name = ?{_OLDEST})"
    query = " UNION ALL ".join([arm] * len(unique)) + _OLDEST
    args = [value for name in unique for value in (space_id, name, count)]
    return query, (*args, count)


class Engine:
    """Applies the state machine of the contract's section 2 to the store."""

    def __init__(self, store: Store, sink: EventSink, now_ms: Callable[[], int]) -> None:
        self.db = store.conn
        self._store = store
        self._sink = sink
        self._now = now_ms
        self.outbox = Outbox(self.db, sink.due)

    @property
    def push(self) -> dict[str, PushSettings]:
        """Each space's push settings: the outbox's, which decide what it pushes."""
        return self.outbox.push

    @push.setter
    def push(self, settings: dict[str, PushSettings]) -> None:
        self.outbox.push = settings

    # -- transactions ------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[list[Event]]:
        events: list[Event] = []
        with self._store.write():
            yield events
            rows = [
                (new_ulid(e.at), e.job_id, e.type, dumps(e.data), e.attempt_number, e.at)
                for e in events
                if e.history
            ]
            self.db.executemany("INSERT INTO job_events VALUES (?, ?, ?, ?, ?, ?)", rows)
        if published := [e for e in events if e.stream]:
            self._store.after_commit(lambda: self._sink.publish(published))

    def _load(self, job_id: str, space_id: str) -> Job:
        return load_job(self.db, job_id, space_id)

    def _save(self, job: Job, now: int, **changes: Any) -> None:
        changes["updated_at"] = now
        job.update(changes)
        columns = ", ".join(f"{name} = ?" for name in changes)
        self.db.execute(f"UPDATE jobs SET {columns} WHERE id = ?", (*changes.values(), job["id"]))
        if changes.get("due_at") is not None:
            self._sink.due(changes["due_at"])

    @staticmethod
    def _event(
        events: list[Event], job: Job, kind: str, data: Any, now: int, stream: bool = True
    ) -> None:
        events.append(
            Event(
                kind, job["id"], job["space_id"], job["name"], job["status"],
                job["attempt_number"], data, now, stream=stream,
            )
        )  # fmt: skip

    def _require(self, job: Job, action: str, *statuses: str) -> None:
        if job["status"] not in statuses:
            raise conflict(job["id"], job["status"], action)

    def _update_if(
        self,
        job_id: str,
        space_id: str,
        action: str,
        statuses: tuple[str, ...],
        now: int,
        **changes: Any,
    ) -> Job:
        """Change the job in one statement if it is ours and in one of ``statuses``.

        The hot path is a single ``UPDATE ... RETURNING``; only when it matches nothing is
        the job read, to answer 404, 403 or 409 precisely.
        """
        changes["updated_at"] = now
        sets, args = [], []
        for name, value in changes.items():
            if value is _REARM:
                sets.append(f"{name} = ? + timeout_seconds * 1000")
                args.append(now)
            else:
                sets.append(f"{name} = ?")
                args.append(value)
        marks = ", ".join("?" * len(statuses))
        row = self.db.execute(
            f"UPDATE jobs SET {', '.join(sets)} WHERE id = ? AND space_id = ?"
            f" AND status IN ({marks}) RETURNING *",
            (*args, job_id, space_id, *statuses),
        ).fetchone()
        if row is None:
            job = self._load(job_id, space_id)
            raise conflict(job_id, job["status"], action)
        if changes.get("due_at") is not None:
            self._sink.due(row["due_at"])
        return dict(row)

    # -- producer side -----------------------------------------------------------

    def create(self, space_id: str, specs: Sequence[NewJob]) -> list[Job]:
        now = self._now()
        jobs = []
        with self._tx() as events:
            for spec in specs:
                job: Job = {
                    "id": new_ulid(now),
                    "space_id": space_id,
                    "name": spec.name,
                    "payload": spec.payload,
                    "status": "pending" if spec.scheduled_for is None else "scheduled",
                    "max_retries": spec.max_retries,
                    "attempt_number": 0,
                    "timeout_seconds": spec.timeout_seconds,
                    "scheduled_for": spec.scheduled_for,
                    "callback_url": spec.callback_url,
                    "callback_headers": spec.callback_headers,
                    "created_at": now,
                    "updated_at": now,
                    "due_at": spec.scheduled_for,
                }
                columns = ", ".join(job)
                marks = ", ".join("?" * len(job))
                self.db.execute(
                    f"INSERT INTO jobs ({columns}) VALUES ({marks})", tuple(job.values())
                )
                at = ts(spec.scheduled_for)
                self._event(events, job, "created", {"name": spec.name, "scheduledFor": at}, now)
                if spec.scheduled_for is not None:
                    self._event(events, job, "scheduled", {"scheduledFor": at}, now)
                    self._sink.due(spec.scheduled_for)
                else:
                    self.outbox.push_pending(job, now)
                jobs.append(job)
        return jobs

    def kill(self, job_id: str, space_id: str, reason: str | None) -> Job:
        now = self._now()
        with self._tx() as events:
            result = {"reason": reason}
            job = self._update_if(
                job_id, space_id, "kill", _LIVE, now, **_finish(result, now, "killed")
            )
            self._finished(events, job, result, now)
        return job

    # -- worker side -------------------------------------------------------------

    def poll(
        self,
        space_id: str,
        count: int,
        names: list[str] | None,
        reply: Callable[[list[Job]], R],
    ) -> R:
        """Deliver up to ``count`` pending jobs, oldest first; ``reply(jobs)``, made in the
        transaction, is returned."""
        now = self._now()
        query, args = _oldest_pending(space_id, count, names)
        with self._tx() as events:
            jobs = [dict(row) for row in self.db.execute(query, args).fetchall()]
            for job in jobs:
                self._deliver(events, job, "poll", now)
            return reply(jobs)

    def claim(self, job_id: str, space_id: str, reply: Callable[[Job], R]) -> R:
        """Deliver this pending job; ``reply(job)``, made in the transaction, is returned."""
        now = self._now()
        with self._tx() as events:
            job = self._update_if(job_id, space_id, "claim", ("pending",), now, **_deliver(now))
            self._event(events, job, "delivered", {"via": "claim"}, now)
            return reply(job)

    def _deliver(self, events: list[Event], job: Job, via: str, now: int) -> None:
        due = now + job["timeout_seconds"] * 1000
        self._save(job, now, **{**_deliver(now), "due_at": due})
        self._event(events, job, "delivered", {"via": via}, now)

    def ack(self, job_id: str, space_id: str) -> Job:
        now = self._now()
        with self._tx() as events:
            changes = {"status": "running", "started_at": now, "due_at": _REARM}
            job = self._update_if(job_id, space_id, "ack", ("delivered",), now, **changes)
            self._event(events, job, "running", None, now)
        return job

    def touch(self, job_id: str, space_id: str, kind: str, data: Any) -> Job:
        """progress, checkpoint, event or keepalive: recorded; all but event re-arm the timer."""
        now = self._now()
        with self._tx() as events:
            changes: dict[str, Any] = {}
            if kind != "event":
                changes["due_at"] = _REARM
            if kind == "progress":
                changes["progress"] = dumps({**data, "updatedAt": format_ts(now)})
            elif kind == "checkpoint":
                changes["checkpoint"] = dumps(data)
            job = self._update_if(
                job_id, space_id, f"send {kind} for", ("running",), now, **changes
            )
            if kind != "keepalive":
                self._event(events, job, kind, data, now)
        return job

    def complete(self, job_id: str, space_id: str, result: Any) -> Job:
        now = self._now()
        with self._tx() as events:
            changes = _finish(result, now, "completed")
            job = self._update_if(job_id, space_id, "complete", ("running",), now, **changes)
            self._finished(events, job, result, now)
        return job

    def fail(self, job_id: str, space_id: str, error: str) -> Job:
        now = self._now()
        with self._tx() as events:
            job = self._load(job_id, space_id)
            self._require(job, "fail", "running")
            self._fail(events, job, error, now)
        return job

    def _fail(self, events: list[Event], job: Job, error: str, now: int) -> None:
        if job["attempt_number"] >= job["max_retries"]:
            self._finish(events, job, "dead", {"error": error}, now)
            return
        attempt = job["attempt_number"] + 1
        self._save(
            job, now, status="pending", attempt_number=attempt,
            delivered_at=None, started_at=None, due_at=None,
        )  # fmt: skip
        self._event(events, job, "retried", {"error": error, "attemptNumber": attempt}, now)
        self.outbox.push_pending(job, now)

    def _finish(self, events: list[Event], job: Job, status: str, result: Any, now: int) -> None:
        self._save(job, now, **_finish(result, now, status))
        self._finished(events, job, result, now)

    def _finished(self, events: list[Event], job: Job, result: Any, now: int) -> None:
        """The terminal event, and the callback when the job has a URL."""
        self._event(events, job, job["status"], result, now)
        self.outbox.callback(job, result, now)

    def append_logs(self, job_id: str, space_id: str, lines: Sequence[LogLine]) -> tuple[int, int]:
        """Store log lines in any status; returns the first and last sequence numbers."""
        now = self._now()
        with self._tx() as events:
            job = self._load(job_id, space_id)
            first = job["log_seq"] + 1
            rows = [
                (job_id, first + i, line.ts, line.level, line.message, line.source, line.metadata)
                for i, line in enumerate(lines)
            ]
            self.db.executemany("INSERT INTO job_logs VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            last = first + len(lines) - 1
            self.db.execute("UPDATE jobs SET log_seq = ? WHERE id = ?", (last, job_id))
            data = {"fromSeq": first, "toSeq": last, "count": len(lines)}
            events.append(
                Event(
                    "logs", job_id, space_id, job["name"], job["status"],
                    job["attempt_number"], data, now, history=False,
                )
            )  # fmt: skip
        return first, last

    # -- timers, pushes and callbacks --------------------------------------------

    def next_due(self) -> int | None:
        row = self.db.execute("SELECT MIN(due_at) FROM jobs WHERE due_at IS NOT NULL").fetchone()
        return row[0] if row else None

    def fire_due(self, batch: int = 500) -> int:
        """Apply every timer that is due: release, delivery timeout, execution timeout."""
        fired = 0
        while True:
            now = self._now()
            with self._tx() as events:
                rows = self.db.execute(
                    "SELECT * FROM jobs WHERE due_at <= ? ORDER BY due_at LIMIT ?", (now, batch)
                ).fetchall()
                for row in rows:
                    self._expire(events, dict(row), now)
            fired += len(rows)
            if len(rows) < batch:
                return fired

    def _expire(self, events: list[Event], job: Job, now: int) -> None:
        if job["status"] == "running":
            self._fail(events, job, "timeout", now)
            return
        reason = {"scheduled": "scheduled", "delivered": "delivery_timeout"}.get(job["status"])
        if reason is None:  # a stale timer on a job that has moved on
            self._save(job, now, due_at=None)
            return
        self._save(job, now, status="pending", delivered_at=None, due_at=None)
        self._event(events, job, "pending", {"reason": reason}, now)
        self.outbox.push_pending(job, now)

    def repush_pending(self, space_id: str) -> int:
        """Push the space's pending jobs again, oldest first; returns how many.

        For ``emit-push dev``: the pushes made while the app restarted found nobody.
        """
        now = self._now()
        with self._tx():
            return self.outbox.repush(space_id, now)

    def record_delivery(
        self,
        outbox_id: int,
        job_id: str,
        kind: str | None,
        data: dict[str, Any] | None,
        retry_at: int | None = None,
    ) -> None:
        """Note the outcome of a push or callback attempt; reschedule it or drop it."""
        now = self._now()
        with self._tx() as events:
            self.outbox.settle(outbox_id, retry_at)
            row = self.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is not None and kind is not None:
                # A push's outcome is streamed too (DECIDED: a watcher sees a failed push as
                # it happens); a callback's comes after the job ended: history only.
                streamed = kind.startswith("push_")
                self._event(events, dict(row), kind, data, now, stream=streamed)

    def set_push(self, space_id: str, settings: PushSettings) -> None:
        """Store a space's push settings; pushes follow them from now on."""
        with self._store.write():
            self.outbox.save_push(space_id, settings)
        self.push[space_id] = settings
