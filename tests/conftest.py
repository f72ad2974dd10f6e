"""Shared fixtures: the local emit server in-process and on real uvicorn (loopback only)."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from emit_push.cli import base_url, bind, uvicorn_server
from emit_push.server import EmitServer, KeySpec, ServerConfig

SPACE = "01JTESTSPACE00000000000000"
OTHER_SPACE = "01JOTHERSPACE0000000000000"
WORKER_KEY = "emit_test_worker_key"
PRODUCER_KEY = "emit_test_producer_key"
PROGRESS_TOKEN = "emit_test_progress_token"
ADMIN_KEY = "emit_test_admin_key"  # every scope, default space
OTHER_KEY = "emit_test_other_space_key"  # every scope, another space
ALL_SCOPES = ["jobs:worker", "jobs:create", "jobs:kill", "space:admin"]


def make_config(**changes: object) -> ServerConfig:
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
    )
    return replace(config, **changes)  # type: ignore[arg-type]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every ``async def`` test runs on anyio's asyncio backend."""
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            item.add_marker(pytest.mark.anyio)


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


class LiveServer:
    """The server on real uvicorn in a thread with its own event loop, on 127.0.0.1.

    ``restart()`` stops it and starts a new server on the same port and database, which is
    how the restart tests lose nothing.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.port = 0
        self._thread: threading.Thread | None = None
        self.start()

    def start(self) -> None:
        self.emit = EmitServer(self.config)
        sock = bind("127.0.0.1", self.port)
        self.port = sock.getsockname()[1]
        self.base_url = base_url(sock)
        started = threading.Event()
        self._server = uvicorn_server(self.emit, "warning", on_started=started.set)
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._server.serve(sockets=[sock]),), daemon=True
        )
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("uvicorn did not start")

    def stop(self) -> None:
        assert self._thread is not None
        self._server.should_exit = True
        self._thread.join(10)
        assert not self._thread.is_alive(), "uvicorn did not stop"

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1)

    def client(self, key: str | None = ADMIN_KEY) -> httpx.AsyncClient:
        headers = {"x-api-key": key} if key else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, trust_env=False)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The server on uvicorn with a file database in a temporary folder."""
    server = LiveServer(make_config(db_path=str(tmp_path / "emit.sqlite3")))
    yield server
    server.stop()
