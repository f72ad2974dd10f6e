"""Shared fixtures: the local emit server in-process and on real uvicorn (loopback only)."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from emit_push.cli.serving import bind
from emit_push.server import API_PREFIX, EmitServer, KeySpec, ServerConfig

# A shell runs a command started with `&` with SIGINT ignored, and a child process keeps
# an ignored signal: the CLI processes the tests stop with Ctrl-C would never hear it.
# The test session answers SIGINT as Python does by default, whoever started it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

SPACE = "01JTESTSPACE00000000000000"
OTHER_SPACE = "01JOTHERSPACE0000000000000"
WORKER_KEY = "emit_test_worker_key"
PRODUCER_KEY = "emit_test_producer_key"
PROGRESS_TOKEN = "emit_test_progress_token"
ADMIN_KEY = "emit_test_admin_key"  # every scope, default space
OTHER_KEY = "emit_test_other_space_key"  # every scope, another space
ALL_SCOPES = ["jobs:worker", "jobs:create", "jobs:kill", "space:admin"]


class LocalResolver:
    """A resolver from a table: names never leave the machine (no DNS lookup in tests).

    ``answers`` maps a name to its addresses, or to a list of answers given in turn (the
    last one repeated), for DNS rebinding. Any other name does not resolve.
    """

    def __init__(
        self, answers: Mapping[str, Sequence[str] | Sequence[Sequence[str]]] | None = None
    ) -> None:
        self.answers = {"localhost": ["127.0.0.1"], **(answers or {})}
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        answer = self.answers.get(host.lower())
        if not answer:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if isinstance(answer[0], str):
            return [str(a) for a in answer]
        turn = min(self.asked.count(host) - 1, len(answer) - 1)
        return [str(a) for a in answer[turn]]


def make_config(**changes: object) -> ServerConfig:
    """The test server's settings; names in push and callback URLs resolve from a table
    (``LocalResolver``): no test ever asks a DNS server."""
    config = ServerConfig(
        db_path=":memory:",
        space_id=SPACE,
        worker_key=WORKER_KEY,
        producer_key=PRODUCER_KEY,
        progress_token=PROGRESS_TOKEN,
        api_keys=[
            KeySpec(ADMIN_KEY, ALL_SCOPES, name="admin"),
            KeySpec(OTHER_KEY, ALL_SCOPES, name="other", space_id=OTHER_SPACE),
        ],
        callback_retry_delays=(0.05, 0.1, 0.2),
        resolver=LocalResolver(),
    )
    return replace(config, **changes)  # type: ignore[arg-type]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server_config() -> ServerConfig:
    """Override in a module to change the in-process server's settings."""
    return make_config()


@pytest.fixture
async def emit(server_config: ServerConfig) -> AsyncIterator[EmitServer]:
    """An in-process server (started, scheduler running) on the test's event loop."""
    async with EmitServer(server_config) as server:
        yield server


def client_for(server: EmitServer, key: str | None = PRODUCER_KEY) -> httpx.AsyncClient:
    headers = {"x-api-key": key} if key else {}
    transport = httpx.ASGITransport(app=server.app)
    return httpx.AsyncClient(
        transport=transport, base_url="http://emit.test/api/v1", headers=headers
    )


@pytest.fixture
async def http(emit: EmitServer) -> AsyncIterator[httpx.AsyncClient]:
    """httpx over ASGITransport to the in-process server, as the admin key (every scope)."""
    async with client_for(emit, ADMIN_KEY) as client:
        yield client


class ServeThread:
    """Any ASGI app on real uvicorn, in a thread with its own event loop, on 127.0.0.1."""

    def __init__(self, app: Any, port: int = 0) -> None:
        sock = bind("127.0.0.1", port)
        self.port: int = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        started = threading.Event()
        config = uvicorn.Config(app, log_level="warning", ws="websockets-sansio", interface="asgi3")
        self._server = _NotifyingServer(config, started)
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._server.serve(sockets=[sock]),), daemon=True
        )
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("uvicorn did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        assert not self._thread.is_alive(), "uvicorn did not stop"


class _NotifyingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config)
        self._started_event = started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self._started_event.set()


class LiveServer:
    """The emit server on real uvicorn (see ServeThread).

    ``restart()`` stops it and starts a new server on the same port and database: that is
    how the restart tests prove nothing is lost.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.port = 0
        self.requests: list[tuple[str, str, tuple[str, int] | None]] = []
        """Every HTTP request served: method, path, and the client's (host, port)."""
        self.start()

    def start(self) -> None:
        self.emit = EmitServer(self.config)
        self._thread = ServeThread(self._recorded, self.port)
        self.port = self._thread.port
        self.base_url = f"{self._thread.url}{API_PREFIX}"

    async def _recorded(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            self.requests.append((scope["method"], scope["path"], client and tuple(client)))
        await self.emit.app(scope, receive, send)

    def api_calls(self, job_id: str | None = None) -> list[tuple[str, str]]:
        """(method, path) of the API requests made so far, about one job if given."""
        return [
            (method, path)
            for method, path, _ in self.requests
            if path.startswith(API_PREFIX) and (job_id is None or f"/jobs/{job_id}" in path)
        ]

    def stop(self) -> None:
        self._thread.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1)

    def client(self, key: str | None = ADMIN_KEY, **options: Any) -> httpx.AsyncClient:
        headers = {"x-api-key": key} if key else {}
        return httpx.AsyncClient(
            base_url=self.base_url, headers=headers, trust_env=False, **options
        )


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The server on uvicorn with a file database in a temporary folder."""
    server = LiveServer(make_config(db_path=str(tmp_path / "emit.sqlite3")))
    yield server
    server.stop()
