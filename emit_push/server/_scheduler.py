"""One scheduler over stored due times: job timers and the outbox of pushes and callbacks.

It sleeps until the earliest ``jobs.due_at`` or ``outbox.due_at`` (both indexed), or until
a write announces an earlier one, then applies what is due. Its first pass runs inside
``start()``, so timers that came due while the server was down fire before any request is
served. Pushes and callbacks are sent off the request path, at most
``outbound_concurrency`` at once; a row leaves the outbox only after its attempt is
recorded, so a restart resends what was in flight.

Nothing may spin: an attempt that raises anything is a failed attempt, recorded and moved
on (retried later or dropped), and a pass that fails is logged and retried a second later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import httpx

from ._clock import Clock
from ._config import ServerConfig
from ._engine import Engine
from ._outbound import describe_failure

__all__ = ["Scheduler"]

log = logging.getLogger("emit_push.server")

_FIXED_HEADERS = {"Content-Type": "application/json", "User-Agent": "emit.run/1.0"}
_BACKOFF_MS = 1000  # after a failed pass
_RECORD_RETRY_S = 1.0  # after an outcome that could not be stored

Outcome = tuple[str | None, dict[str, Any] | None, int | None]  # event kind, data, retry at


class Scheduler:
    def __init__(self, engine: Engine, config: ServerConfig) -> None:
        self._engine = engine
        self._db = engine.db
        self._clock: Clock = config.clock
        self._config = config
        self._wake = asyncio.Event()
        self._next: int | None = None
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._http = httpx.AsyncClient(trust_env=False, follow_redirects=False)
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
        await self._http.aclose()

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
                outcome = await (self._push(row) if row["kind"] == "push" else self._callback(row))
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

    async def _send(
        self, url: str, headers: dict[str, str], body: str, timeout: float
    ) -> tuple[int | None, str | None]:
        """``(status, None)``, or ``(None, error)`` when the attempt raised anything at all."""
        try:
            merged = httpx.Headers(headers)
            merged.update(_FIXED_HEADERS)
            response = await self._http.post(url, content=body, headers=merged, timeout=timeout)
        except Exception as exc:  # not only httpx's: an attempt must always end recorded
            return None, describe_failure(exc, headers.values())
        return response.status_code, None

    async def _push(self, row: dict[str, Any]) -> Outcome:
        settings = self._engine.push.get(row["space_id"])
        if settings is None or not settings.url:  # push was turned off meanwhile
            return None, None, None
        status, error = await self._send(
            settings.url, settings.headers or {}, row["body"], self._config.push_timeout
        )
        data: dict[str, Any] = {"url": settings.url}
        if error is None:
            return "push_sent", data | {"statusCode": status}, None
        return "push_failed", data | {"error": error}, None

    async def _callback(self, row: dict[str, Any]) -> Outcome:
        attempt: int = row["attempt"]
        status: int | None
        error: str | None
        try:
            headers = json.loads(row["headers"] or "{}")
            if not isinstance(headers, dict):
                raise TypeError("callback headers are not an object")
        except (ValueError, TypeError) as exc:
            status, error = None, describe_failure(exc)
        else:
            status, error = await self._send(
                row["url"], headers, row["body"], self._config.callback_timeout
            )
        data: dict[str, Any] = {"url": row["url"], "retryAttempt": attempt, "statusCode": status}
        if status == 200:
            return "callback_sent", data | {"willRetry": False, "error": None}, None
        delays = self._config.callback_retry_delays
        will_retry = attempt < len(delays)
        data |= {"willRetry": will_retry, "error": error or f"HTTP {status}"}
        retry_at = self._clock.now_ms() + round(delays[attempt] * 1000) if will_retry else None
        return "callback_failed", data, retry_at
