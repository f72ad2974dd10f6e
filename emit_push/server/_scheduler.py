"""One scheduler over stored due times: job timers and the outbox of pushes and callbacks.

It sleeps until the earliest ``jobs.due_at`` or ``outbox.due_at`` (both indexed), or until
a write announces an earlier one, then applies what is due. Its first pass runs inside
``start()``, so timers that came due while the server was down fire before any request is
served. Pushes and callbacks are sent off the request path, at most
``outbound_concurrency`` at once (``_delivery`` makes each attempt); a row leaves the
outbox only after its attempt is recorded, so a restart resends what was in flight.

Nothing may spin: an attempt that raises anything is a failed attempt, recorded and moved
on (retried later or dropped), and a pass that fails is logged and retried a second later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ._clock import Clock
from ._config import ServerConfig
from ._delivery import Outcome, Sender
from ._engine import Engine

__all__ = ["Scheduler"]

log = logging.getLogger("emit_push.server")

_BACKOFF_MS = 1000  # after a failed pass
_RECORD_RETRY_S = 1.0  # after an outcome that could not be stored


class Scheduler:
    def __init__(self, engine: Engine, config: ServerConfig) -> None:
        self._engine = engine
        self._db = engine.db
        self._clock: Clock = config.clock
        self._config = config
        self._wake = asyncio.Event()
        self._next: int | None = None
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._sender = Sender(engine, config)
        self._loop_task: asyncio.Task[None] | None = None
        self._pass_waiters: list[asyncio.Future[None]] = []

    def due(self, at_ms: int) -> None:
        """A write set a due time; wake up if it is earlier than the one we sleep towards."""
        if self._next is None or at_ms < self._next:
            self._wake.set()

    def start(self) -> None:
        """Run the first pass now (overdue timers fire before any request), then loop."""
        self._next = self._pass()
        self._loop_task = asyncio.create_task(self._run(), name="emit-scheduler")

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *self._inflight.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._sender.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self._clock.wait(self._wake, self._next)
            except Exception:  # a broken clock must not end the scheduler either
                log.exception("scheduler wait failed; retrying in a second")
                await asyncio.sleep(_BACKOFF_MS / 1000)
            self._next = self._pass()
            waiters, self._pass_waiters = self._pass_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def next_pass(self) -> asyncio.Future[None]:
        """Done when the loop has made its next pass (for tests: advance a ManualClock,
        await this, and whatever came due has been applied by the loop itself)."""
        waiter = asyncio.get_running_loop().create_future()
        self._pass_waiters.append(waiter)  # now, not when awaited: the pass may come first
        return waiter

    def _pass(self) -> int | None:
        """Apply what is due; returns when to look again."""
        self._wake.clear()  # wakes set during the pass are kept for the next wait
        try:
            self.run_due()
            return self._next_due()
        except Exception:
            log.exception("scheduler pass failed; retrying in a second")
            return self._clock.now_ms() + _BACKOFF_MS

    def run_due(self) -> int:
        """Apply due timers and start due deliveries now; returns how many timers fired."""
        fired = self._engine.fire_due()
        free = self._config.outbound_concurrency - len(self._inflight)
        if free > 0:
            rows = self._db.execute(
                "SELECT * FROM outbox WHERE due_at <= ? ORDER BY due_at, id LIMIT ?",
                (self._clock.now_ms(), free + len(self._inflight)),
            ).fetchall()
            for row in rows:
                if len(self._inflight) >= self._config.outbound_concurrency:
                    break
                if row["id"] not in self._inflight:
                    self._inflight[row["id"]] = asyncio.create_task(self._deliver(dict(row)))
        return fired

    def _next_due(self) -> int | None:
        candidates = [self._engine.next_due()]
        if len(self._inflight) < self._config.outbound_concurrency:
            for outbox_id, due_at in self._db.execute(
                "SELECT id, due_at FROM outbox ORDER BY due_at, id LIMIT ?",
                (len(self._inflight) + 1,),
            ):
                if outbox_id not in self._inflight:
                    candidates.append(due_at)
                    break
        return min((c for c in candidates if c is not None), default=None)

    async def in_flight(self) -> None:
        """Wait until every delivery started so far has been recorded (for tests)."""
        while self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)

    async def _deliver(self, row: dict[str, Any]) -> None:
        """One attempt, then its record. The row stays ours (in flight) until recorded."""
        try:
            try:
                outcome: Outcome = await self._sender.attempt(row)
            except Exception as exc:  # a bug or a damaged row: record it and drop the row
                log.exception("%s for job %s could not be attempted", row["kind"], row["job_id"])
                data = {"url": row["url"], "error": type(exc).__name__}
                outcome = f"{row['kind']}_failed", data, None
            while True:
                try:
                    self._engine.record_delivery(row["id"], row["job_id"], *outcome)
                    return
                except Exception:  # e.g. a locked database: keep the outcome, try again
                    log.exception("recording %s for job %s failed", row["kind"], row["job_id"])
                    await asyncio.sleep(_RECORD_RETRY_S)
        finally:
            self._inflight.pop(row["id"], None)
            self._wake.set()
