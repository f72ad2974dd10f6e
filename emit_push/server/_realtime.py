"""Realtime: the job and space WebSocket streams (contract §8), fed by the hub (``_hub``).

Events are published after their transaction commits, in commit order. The space stream
numbers them with a per-space ``seq`` that lives as long as this server instance
(``streamInstanceId``); there is no replay, so a client whose cursor does not match is
told ``missed`` and re-reads over HTTP.

A cursor is ``since`` (the last ``seq`` seen) and ``streamInstanceId`` (the instance that
numbered it). ``missed`` is true when the client names another instance, or gives a
``since`` that is not the current ``seq``, or gives ``since`` without the instance: a seq
alone cannot tell this instance from one before a restart, so it is trusted only when it
cannot hide anything (``since=0`` while this instance has published nothing). No cursor at
all is a fresh start: not missed.

Beyond §8's types, the full views (a ``jobs:read`` job stream, the space stream) carry the
outcome of each push attempt, ``push_sent`` / ``push_failed`` with the history event's data
(DECIDED): a push that fails is seen as it fails. Progress-only views do not get them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from ._auth import Principal, key_from_headers
from ._errors import ApiError
from ._http import DIGITS
from ._hub import CLOSED, Subscriber
from ._ids import format_ts
from ._queries import load_job
from ._services import Services
from ._wire import TERMINAL, Event, dumps, job_document, loads

__all__ = ["RealtimeEndpoints"]

_PROGRESS_VIEW = frozenset({"progress", "completed"})


class _Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        self.code, self.reason = code, reason


class RealtimeEndpoints:
    """The two WebSocket endpoints; errors close the socket with the contract's codes."""

    def __init__(self, server: Services) -> None:
        self._server = server

    def _principal(self, ws: WebSocket, required: bool) -> Principal | None:
        key = ws.query_params.get("token") or key_from_headers(ws.headers)
        if not key and not required:
            return None
        try:
            return self._server.keyring.authenticate(key)
        except ApiError as exc:
            raise _Close(4401 if exc.status == 401 else 4429, exc.message) from None

    def _now(self) -> str:
        return format_ts(self._server.config.clock.now_ms())

    async def job(self, ws: WebSocket) -> None:
        await ws.accept()
        job_id = ws.path_params["job_id"]
        try:
            principal = self._principal(ws, required=False)
            if principal is not None and "jobs:read:progress" not in principal.scopes:
                raise _Close(4403, "Missing required scope: jobs:read:progress")
            full = principal is not None and "jobs:read" in principal.scopes
            self._server.store.commit_group()  # see space(): init shows no write still to come
            with self._server.hub.subscribe("job", job_id) as sub:
                try:
                    row = load_job(self._server.store.conn, job_id, None)
                except ApiError as exc:
                    raise _Close(4404, exc.message) from None
                if principal is not None and row["space_id"] != principal.space_id:
                    raise _Close(4403, "API key does not belong to this job's space")
                data = job_document(row) if full else {"progress": loads(row["progress"])}
                init = {"type": "init", "jobId": job_id, "status": row["status"], "data": data}
                await ws.send_json({**init, "timestamp": self._now()})
                if row["status"] in TERMINAL:
                    raise _Close(1000, "job finished")
                await _pump(ws, sub, _job_view if full else _progress_view)
        except _Close as close:
            await _close(ws, close.code, close.reason)
        except WebSocketDisconnect:  # gone before the first message went out
            pass

    async def space(self, ws: WebSocket) -> None:
        await ws.accept()
        space_id = ws.path_params["space_id"]
        try:
            principal = self._principal(ws, required=True)
            assert principal is not None
            if "jobs:read" not in principal.scopes:
                raise _Close(4403, "Missing required scope: jobs:read")
            if principal.space_id != space_id:
                raise _Close(4403, "API key does not belong to this space")
            since = ws.query_params.get("since")
            if since is not None and not DIGITS.fullmatch(since):
                raise _Close(4400, "since must be a non-negative integer")
            instance = ws.query_params.get("streamInstanceId")
            hub = self._server.hub
            # Writes of this loop turn are visible on our connection before they commit, and
            # their events are published (with seqs beyond ours) only after: counts taken
            # now would count such a job twice for a client that applies the events. So
            # commit first; from here to the counts nothing awaits, so nothing else writes.
            self._server.store.commit_group()
            with hub.subscribe("space", space_id) as sub:
                seq = hub.seq(space_id)
                missed = _missed(
                    None if since is None else int(since), instance, seq, hub.instance_id
                )
                await ws.send_json(
                    {
                        "type": "connected",
                        "seq": seq,
                        "streamInstanceId": hub.instance_id,
                        "missed": missed,
                        "counts": self._server.reader.counts(space_id),
                        "timestamp": self._now(),
                    }
                )
                await _pump(ws, sub, _space_view)
        except _Close as close:
            await _close(ws, close.code, close.reason)
        except WebSocketDisconnect:  # gone before the first message went out
            pass


def _missed(since: int | None, instance: str | None, seq: int, current: str) -> bool:
    """Whether events may have gone by unseen since the client's cursor (module docstring)."""
    if instance is not None and instance != current:
        return True
    if since is None:
        return False
    if instance is None:
        return since != 0 or seq != 0
    return since != seq


Render = Callable[[Any], "tuple[dict[str, Any] | None, bool]"]


def _job_view(event: Event) -> tuple[dict[str, Any] | None, bool]:
    return event.envelope(), event.type in TERMINAL


def _progress_view(event: Event) -> tuple[dict[str, Any] | None, bool]:
    """Anonymous and ``jobs:read:progress`` viewers see progress and completion only."""
    if event.type not in _PROGRESS_VIEW:
        return None, event.type in TERMINAL
    return event.envelope(with_data=event.type == "progress"), event.type in TERMINAL


def _space_view(item: tuple[int, Event]) -> tuple[dict[str, Any] | None, bool]:
    seq, event = item
    return {**event.envelope(), "jobName": event.job_name, "seq": seq}, False


async def _pump(ws: WebSocket, sub: Subscriber, render: Render) -> None:
    """Send what the subscriber receives until the client leaves or the job ends."""
    watcher = asyncio.create_task(_watch_disconnect(ws, sub))
    try:
        while (item := await sub.queue.get()) is not CLOSED:
            message, done = render(item)
            if message is not None:
                try:
                    await ws.send_text(dumps(message))
                except (WebSocketDisconnect, OSError, RuntimeError):
                    return  # the client is gone: the rest of the queue goes nowhere
                # A backlog would otherwise be written without a pause, and a lost
                # connection is only noticed once the loop runs its callbacks.
                await asyncio.sleep(0)
            if done:
                raise _Close(1000, "job finished")
        if sub.overflowed:
            raise _Close(1013, "client too slow; reconnect with your cursor")
    finally:
        watcher.cancel()


async def _watch_disconnect(ws: WebSocket, sub: Subscriber) -> None:
    """Read (and drop) what the client sends, text or binary, until it leaves."""
    try:
        with contextlib.suppress(Exception):  # a failure to read: nobody listens any more
            while (await ws.receive())["type"] != "websocket.disconnect":
                pass
    finally:  # also when cancelled: the pump has stopped then, and reads nothing more
        sub.queue.put_nowait(CLOSED)


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await ws.close(code, reason)
