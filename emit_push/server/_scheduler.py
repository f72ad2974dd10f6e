"""One scheduler over stored due times: job timers and the outbox of pushes and callbacks.

It sleeps until the earliest ``jobs.due_at`` or ``outbox.due_at`` (both indexed), or until
a write announces an earlier one, then applies what is due. Pushes and callbacks are sent
off the request path, at most ``outbound_concurrency`` at once; a row leaves the outbox
only after its attempt is recorded, so a restart resends what was in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from typing import Any

import httpx

from ._clock import Clock
from ._config import ServerConfig
from ._engine import Engine

__all__ = ["Scheduler"]

log = logging.getLogger("emit_push.server")

_FIXED_HEADERS = {"Content-Type": "application/json", "User-Agent": "emit.run/1.0"}


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

    def due(self, at_ms: int) -> None:
        """A write set a due time; wake up if it is earlier than the one we sleep towards."""
        if self._next is None or at_ms < self._next:
            self._wake.set()

    def start(self) -> None:
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
            self._wake.clear()
            try:
                self.run_due()
                self._next = self._next_due()
            except sqlite3.Error:
                log.exception("scheduler pass failed; retrying in a second")
                self._next = self._clock.now_ms() + 1000
            await self._clock.wait(self._wake, self._next)

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
        try:
            if row["kind"] == "push":
                await self._push(row)
            else:
                await self._callback(row)
        except Exception:  # a failed record must not kill the scheduler
            log.exception("recording %s for job %s failed", row["kind"], row["job_id"])
        finally:
            self._inflight.pop(row["id"], None)
            self._wake.set()

    async def _post(self, url: str, headers: dict[str, str], body: str, timeout: float) -> Any:
        merged = httpx.Headers(headers)
        merged.update(_FIXED_HEADERS)
        return await self._http.post(url, content=body, headers=merged, timeout=timeout)

    async def _push(self, row: dict[str, Any]) -> None:
        settings = self._engine.push.get(row["space_id"])
        if settings is None or not settings.url:  # push was turned off meanwhile
            self._engine.record_delivery(row["id"], row["job_id"], None, None)
            return
        data: dict[str, Any] = {"url": settings.url}
        try:
            response = await self._post(
                settings.url, settings.headers or {}, row["body"], self._config.push_timeout
            )
        except httpx.HTTPError as exc:
            data["error"] = _describe(exc)
            kind = "push_failed"
        else:
            data["statusCode"] = response.status_code
            kind = "push_sent"
        self._engine.record_delivery(row["id"], row["job_id"], kind, data)

    async def _callback(self, row: dict[str, Any]) -> None:
        attempt: int = row["attempt"]
        data: dict[str, Any] = {"url": row["url"], "retryAttempt": attempt}
        try:
            response = await self._post(
                row["url"], json.loads(row["headers"]), row["body"], self._config.callback_timeout
            )
        except httpx.HTTPError as exc:
            data |= {"statusCode": None, "error": _describe(exc)}
        else:
            data["statusCode"] = response.status_code
            if response.status_code == 200:
                self._engine.record_delivery(row["id"], row["job_id"], "callback_sent", data)
                return
            data["error"] = f"HTTP {response.status_code}"
        delays = self._config.callback_retry_delays
        data["willRetry"] = attempt < len(delays)
        retry_at = (
            self._clock.now_ms() + round(delays[attempt] * 1000) if data["willRetry"] else None
        )
        self._engine.record_delivery(row["id"], row["job_id"], "callback_failed", data, retry_at)


def _describe(exc: httpx.HTTPError) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
