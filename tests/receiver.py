"""A loopback HTTP receiver for pushes and callbacks: records requests, scripted answers."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tests.conftest import ServeThread


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Answers each request with the next scripted status (then 200) and records it."""

    def __init__(self, statuses: Iterable[int] = (), port: int = 0) -> None:
        self.requests: list[Received] = []
        self._statuses = list(statuses)
        self._changed = threading.Condition()
        self._serve = ServeThread(self._app, port)
        self.port = self._serve.port
        self.url = self._serve.url

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": f"{message['type']}.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        with self._changed:
            status = self._statuses.pop(0) if self._statuses else 200
            self.requests.append(Received(scope["method"], scope["path"], headers, body))
            self._changed.notify_all()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def _wait(self, count: int, timeout: float) -> list[Received]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"expected {count} requests, got {len(self.requests)}")
            return list(self.requests)

    async def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        """Wait (off the event loop) until ``count`` requests have arrived."""
        return await asyncio.to_thread(self._wait, count, timeout)

    def stop(self) -> None:
        self._serve.stop()
