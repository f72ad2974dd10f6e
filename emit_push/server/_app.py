"""The local emit server: storage, lifecycle, scheduler and realtime behind one ASGI app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._api import Api
from ._auth import Keyring
from ._bootstrap import Credentials, bootstrap, load_keys, load_push_settings
from ._config import ServerConfig
from ._dashboard import DASHBOARD_PATH, Dashboard, wants_html
from ._engine import Engine
from ._errors import ApiError
from ._http import host
from ._hub import Hub
from ._openapi import openapi_document
from ._queries import Reader
from ._realtime import RealtimeEndpoints
from ._scheduler import Scheduler
from ._store import Store
from ._wire import Event

__all__ = ["API_PREFIX", "EmitServer", "create_app"]

API_PREFIX = "/api/v1"
log = logging.getLogger("emit_push.server")


class EmitServer:
    """The local emit server. ``server.app`` is its ASGI app; starting it opens the database.

    Under uvicorn the app's lifespan starts and stops it. In-process (for example with
    ``httpx.ASGITransport``, which sends no lifespan events) use it as a context manager::

        async with EmitServer(ServerConfig(db_path=":memory:")) as server:
            transport = httpx.ASGITransport(app=server.app)
    """

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.realtime = RealtimeEndpoints(self)
        self.dashboard = Dashboard(self, API_PREFIX)
        self.app = Starlette(
            routes=[
                Route("/", self._index, methods=["GET"]),
                Route("/health", self._health, methods=["GET"]),
                Route(f"{API_PREFIX}/openapi.json", self._openapi, methods=["GET"]),
                *Api(self, self.realtime).routes(API_PREFIX),
                *self.dashboard.routes(),
            ],
            exception_handlers={
                ApiError: _api_error,
                HTTPException: _http_error,
                ClientDisconnect: _client_gone,
                Exception: _crash,
            },
            lifespan=self._lifespan,
        )
        self._running = 0
        self._openapi_cache: dict[str, Any] | None = None

    # These exist once the server has started; the endpoints read them (``_services``).
    store: Store
    engine: Engine
    reader: Reader
    keyring: Keyring
    hub: Hub
    scheduler: Scheduler
    credentials: Credentials

    async def start(self) -> None:
        """Open the database, create what is missing, and start the scheduler."""
        self._running += 1
        if self._running > 1:
            return
        clock = self.config.clock
        self.store = Store(self.config.db_path)
        self.credentials = bootstrap(self.store, self.config, clock.now_ms())
        self.keyring = Keyring(self.config.rate_limit, clock.now_ms)
        load_keys(self.store, self.keyring)
        self.hub = Hub()
        self.reader = Reader(self.store.conn)
        self.engine = Engine(self.store, self, clock.now_ms)
        self.engine.push = load_push_settings(self.store)
        self.scheduler = Scheduler(self.engine, self.config)
        self.scheduler.start()  # its first pass, made now, fires what came due while we were down
        self.store.group_commits()

    async def stop(self) -> None:
        self._running -= 1
        if self._running > 0:
            return
        await self.scheduler.stop()
        self.store.close()

    async def __aenter__(self) -> EmitServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    # EventSink, for the engine.
    def publish(self, events: Sequence[Event]) -> None:
        self.hub.publish(events)

    def due(self, at_ms: int) -> None:
        self.scheduler.due(at_ms)

    async def _index(self, request: Request) -> Response:
        if wants_html(request):  # a browser: the dashboard
            return self.dashboard.redirect(request)
        root = request.scope.get("root_path", "")
        base = f"{request.url.scheme}://{host(request)}{root}{API_PREFIX}"
        return JSONResponse(
            {
                "name": "emit local server",
                "baseUrl": base,
                "openapi": base + "/openapi.json",
                "dashboard": f"{request.url.scheme}://{host(request)}{root}{DASHBOARD_PATH}",
            }
        )

    async def _health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def _openapi(self, request: Request) -> Response:
        if self._openapi_cache is None:
            self._openapi_cache = openapi_document(API_PREFIX)
        return JSONResponse(self._openapi_cache)


def create_app(config: ServerConfig | None = None) -> Starlette:
    """The server's ASGI app, for ``uvicorn --factory emit_push.server:create_app``."""
    return EmitServer(config).app


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    message = {404: "No such endpoint", 405: "Method not allowed"}.get(exc.status_code, exc.detail)
    body = {"error": message, "code": codes.get(exc.status_code, "http_error")}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _client_gone(conn: HTTPConnection, exc: Exception) -> None:
    """The client left while its body was being read: nobody is left to answer, and
    nothing went wrong here. ``None`` tells Starlette to send nothing."""


async def _crash(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.url.path)
    return JSONResponse({"error": "Internal server error", "code": "internal"}, status_code=500)
