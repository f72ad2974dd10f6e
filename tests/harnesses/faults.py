"""Fault injection in front of the local emit server: chosen requests fail, in three ways.

    faults = FaultyServer(emit.app, kind="before", chance=1 / 3, seed=7, only=WORKER)
    client = AsyncEmitClient(..., transport=httpx.ASGITransport(app=faults))  # in-process
    async with serve(faults) as url:                          # or on real uvicorn, this loop
        client = AsyncEmitClient(..., base_url=url + API_PREFIX)
    faults.injected                                            # Counter({"before": 12})

What the server does, and what the client sees, by ``kind``:

- ``before``: 503 at once; the request never reaches the server, which never acts.
- ``after``: the server gets the request and acts; its answer is thrown away and the
  client gets a 503 instead (the answer is lost).
- ``before-drop`` / ``after-drop``: the same, but the connection closes with no answer.
- ``drop``: ``before-drop`` or ``after-drop``, half and half (by the seeded random; with
  ``every``, in turn).

Which requests fail: of those whose ``"METHOD /path"`` matches the regular expression
``only`` (presets below; default: every HTTP request), every ``every``-th one (3rd, 6th,
...), or each with probability ``chance``, drawn from ``random.Random(seed)`` (the same
requests in the same order fail the same way). Neither: every match fails. Inside
``with faults.paused():`` nothing fails. WebSocket and lifespan traffic pass untouched.

A drop in-process (``httpx.ASGITransport``) raises :class:`Dropped`, an
``httpx.RemoteProtocolError``, in the client, as a connection closed mid-request does. On
uvicorn the connection must really close: :func:`serve` does that (around another server,
wrap the app in :func:`closing_on_drop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import uvicorn

from emit_push.cli.serving import bind

__all__ = [
    "ANY",
    "KINDS",
    "POLL",
    "READS",
    "WORKER",
    "WORKER_CALLS",
    "Dropped",
    "FaultyServer",
    "Injection",
    "Kind",
    "closing_on_drop",
    "serve",
]

Kind = Literal["before", "after", "before-drop", "after-drop", "drop"]
KINDS: tuple[Kind, ...] = ("before", "after", "before-drop", "after-drop", "drop")

ANY = ""
"""Every HTTP request."""
WORKER_CALLS = (
    r"^POST .*/jobs/[^/]+/(claim|ack|progress|checkpoint|event|complete|fail|keepalive|logs)$"
)
"""The calls a worker makes on one job."""
POLL = r"^POST .*/spaces/[^/]+/jobs/poll$"
WORKER = f"{WORKER_CALLS}|{POLL}"
"""Every write a worker makes: the job calls and poll."""
READS = r"^GET "
"""Reads, e.g. the read-backs that settle a call whose answer was lost."""

_UNAVAILABLE = b'{"error":"injected fault: service unavailable","code":"service_unavailable"}'


class Dropped(httpx.RemoteProtocolError):
    """The connection closed before an answer (what the client gets in-process)."""


@dataclass(frozen=True)
class Injection:
    """One failed request: how, which, and (``after`` kinds) the answer the client lost."""

    kind: str
    method: str
    path: str
    lost_status: int | None = None


class FaultyServer:
    """An ASGI app that passes requests to ``app`` and fails the chosen ones; see the module."""

    def __init__(
        self,
        app: Any,
        *,
        kind: Kind = "before",
        only: str | Callable[[str, str], bool] = ANY,
        every: int | None = None,
        chance: float | None = None,
        seed: int = 0,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if every is not None and chance is not None:
            raise ValueError("give every or chance, not both")
        if every is not None and every < 1:
            raise ValueError("every must be 1 or more")
        if chance is not None and not 0 <= chance <= 1:
            raise ValueError("chance must be between 0 and 1")
        self.app = app
        self.kind = kind
        self.every = every or 1
        self.chance = chance
        self._matches = _matcher(only)
        self._random = random.Random(seed)
        self._lock = threading.Lock()  # on uvicorn in a thread, the test reads the counts
        self.enabled = True
        self.matched = 0
        """Requests that matched ``only`` while enabled (failed or not)."""
        self.injected: Counter[str] = Counter()
        """Failures by the kind applied (``drop`` counts as its ``before-drop`` or
        ``after-drop``)."""
        self.log: list[Injection] = []

    @property
    def total(self) -> int:
        return sum(self.injected.values())

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Let every request through inside the block."""
        enabled, self.enabled = self.enabled, False
        try:
            yield
        finally:
            self.enabled = enabled

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = self._choose(scope)
        if kind is None:
            await self.app(scope, receive, send)
            return
        lost = None
        if kind.startswith("after"):
            lost = await _answer_lost(self.app, scope, receive)
        else:
            await _drain(receive)
        with self._lock:
            self.injected[kind] += 1
            self.log.append(Injection(kind, scope["method"], scope["path"], lost))
        if kind.endswith("drop"):
            raise Dropped(f"fault injected: {kind} on {scope['method']} {scope['path']}")
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": _UNAVAILABLE})

    def _choose(self, scope: dict[str, Any]) -> str | None:
        """The kind of failure for this request, or None to let it through."""
        if scope["type"] != "http" or not self.enabled:
            return None
        if not self._matches(scope["method"], scope["path"]):
            return None
        with self._lock:
            self.matched += 1
            if self.chance is not None:
                hit = self._random.random() < self.chance
            else:
                hit = self.matched % self.every == 0
            if not hit:
                return None
            if self.kind != "drop":
                return self.kind
            if self.chance is not None:
                return "before-drop" if self._random.random() < 0.5 else "after-drop"
            drops = self.injected["before-drop"] + self.injected["after-drop"]
            return "before-drop" if drops % 2 == 0 else "after-drop"


def _matcher(only: str | Callable[[str, str], bool]) -> Callable[[str, str], bool]:
    if callable(only):
        return only
    pattern = re.compile(only)
    return lambda method, path: pattern.search(f"{method} {path}") is not None


async def _drain(receive: Any) -> None:
    """Read the request body, so that a keep-alive connection stays in step."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


async def _answer_lost(app: Any, scope: dict[str, Any], receive: Any) -> int | None:
    """Let ``app`` act on the request; return the status of the answer it gave."""
    status: int | None = None

    async def swallow(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, swallow)
    return status


# -- on real uvicorn ------------------------------------------------------------------


class _Close:
    """Returned to uvicorn to close the connection: an ASGI app that returns a value gets
    its connection closed at once, with nothing written when no answer was started."""

    def __repr__(self) -> str:
        return "<connection dropped by the fault harness>"


_CLOSE = _Close()


class _QuietClose(logging.Filter):
    """Hides uvicorn's complaint about the value returned (one error line a drop)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.args, tuple) and _CLOSE in record.args)


_QUIET = _QuietClose()


def closing_on_drop(app: Any) -> Any:
    """``app`` for uvicorn: a :class:`Dropped` closes the connection with no answer."""
    logging.getLogger("uvicorn.error").addFilter(_QUIET)  # added once, however often called

    async def closing(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        try:
            await app(scope, receive, send)
        except Dropped:
            return _CLOSE
        return None

    return closing


class _Server(uvicorn.Server):
    """uvicorn on the caller's event loop; the caller's signals stay the caller's."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.up = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.up.set()


@contextlib.asynccontextmanager
async def serve(app: Any, *, lifespan: Literal["on", "off"] = "off") -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port) on the running event loop;
    yields its URL (``http://127.0.0.1:<port>``). Drops close the connection.

    ``lifespan="off"`` (default) suits an ``EmitServer`` the caller has started already
    (``async with EmitServer(config) as emit``), so that both share this loop.
    """
    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(
        closing_on_drop(app),
        lifespan=lifespan,
        log_level="warning",
        interface="asgi3",
        ws="none",
        timeout_graceful_shutdown=5,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="faults-uvicorn")
    up = asyncio.create_task(server.up.wait())
    await asyncio.wait({task, up}, return_when=asyncio.FIRST_COMPLETED)
    if not up.done():
        up.cancel()
        task.result()  # why it did not start
        raise RuntimeError("uvicorn did not start")
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
