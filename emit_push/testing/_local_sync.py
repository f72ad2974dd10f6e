"""``SyncLocalEmit``: ``LocalEmit`` for plain ``def`` tests.

The server and its ``LocalEmit`` live on an event loop in a thread of their own (an
anyio blocking portal); each method hands its call to that loop and waits for the
answer, so the async methods are the only implementation. Sync clients reach the server
through the same loop (``_PortalTransport``): still no port and no network.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from .._client import EmitClient
from .._extras import requires
from .._framework.app import EmitPush
from .._wire.models import JobDetails, LogEntry

with requires("server", "SyncLocalEmit"):
    from ..server import Clock, Credentials, EmitServer
    from ._local import ADMIN_KEY, LocalEmit, PushOutcome

__all__ = ["SyncLocalEmit"]

T = TypeVar("T")


class SyncLocalEmit:
    """The local emit server in-process, for sync code: ``LocalEmit``'s methods without
    ``await``. Started by ``with`` (or the ``emit_local_sync`` fixture); the settings are
    ``LocalEmit``'s.

        def test_resize() -> None:
            with SyncLocalEmit() as local:
                outcome = local.push(app, "resize", {"url": "s3://a", "width": 64})
                assert outcome.status == "completed"
    """

    space_id = LocalEmit.space_id
    worker_key = LocalEmit.worker_key
    admin_key = LocalEmit.admin_key
    base_url = LocalEmit.base_url

    def __init__(self, *, clock: Clock | None = None, **settings: Any) -> None:
        self._settings: dict[str, Any] = {"clock": clock, **settings}
        self._exit = contextlib.ExitStack()
        self._running: tuple[BlockingPortal, LocalEmit, httpx.Client] | None = None
        self._clients: list[EmitClient] = []

    def __enter__(self) -> SyncLocalEmit:
        if self._running is not None:
            raise RuntimeError("this SyncLocalEmit is running already")
        with contextlib.ExitStack() as starting:
            portal = starting.enter_context(start_blocking_portal("asyncio"))
            local = portal.call(functools.partial(_make, self._settings))
            starting.callback(portal.call, local.__aexit__, None, None, None)
            http = httpx.Client(
                transport=_PortalTransport(portal, local.server.app),
                base_url=self.base_url,
                headers={"x-api-key": ADMIN_KEY},
            )
            starting.callback(http.close)
            starting.callback(self._close_clients)
            self._exit = starting.pop_all()
        self._running = portal, local, http
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._running = None
        self._exit.close()

    def _close_clients(self) -> None:
        clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    # -- what LocalEmit has ---------------------------------------------------------

    @property
    def local(self) -> LocalEmit:
        """The ``LocalEmit`` underneath (its methods are async: on this object's loop)."""
        return self._state()[1]

    @property
    def server(self) -> EmitServer:
        return self.local.server

    @property
    def clock(self) -> Clock:
        return self.local.clock

    @property
    def credentials(self) -> Credentials:
        """The space id and its worker key, producer key and progress token."""
        return self.local.credentials

    @property
    def http(self) -> httpx.Client:
        """httpx to the server's API with every scope, for calls the SDK does not make."""
        return self._state()[2]

    def client(self, *, api_key: str | None = None, **options: Any) -> EmitClient:
        """An ``EmitClient`` bound to this server (every scope unless ``api_key``).

        Closed when the server stops; ``options`` are the client's (``max_retries``...).
        """
        portal, local, _ = self._state()
        options.setdefault("transport", _PortalTransport(portal, local.server.app))
        client = EmitClient(
            space_id=self.space_id, api_key=api_key or ADMIN_KEY, base_url=self.base_url, **options
        )
        self._clients.append(client)
        return client

    def bind(self, app: EmitPush) -> EmitPush:
        """A copy of ``app`` that works this server's jobs (see ``LocalEmit.bind``)."""
        bound: EmitPush = self._state()[0].call(self.local.bind, app)  # where it is used
        return bound

    def create(self, name: str, payload: Any = None, **spec: Any) -> str:
        """Create a job (``spec``: ``max_retries``, ``timeout_seconds``...); its id."""
        return self._call(self.local.create, name, payload, **spec)

    def job(self, job_id: str) -> JobDetails:
        """The job as stored, with its event history."""
        return self._call(self.local.job, job_id)

    def logs(self, job_id: str) -> list[LogEntry]:
        """Every log entry of the job, oldest first."""
        return self._call(self.local.logs, job_id)

    def advance(self, seconds: float) -> int:
        """Move the clock and fire what came due (timeouts, releases); how many fired."""
        return self._call(self.local.advance, seconds)

    def push(
        self,
        app: EmitPush,
        name: str | None = None,
        payload: Any = None,
        *,
        job_id: str | None = None,
        via: Literal["handle_push", "asgi"] = "handle_push",
        headers: Mapping[str, str] | None = None,
        remaining_time: float | None = None,
        **spec: Any,
    ) -> PushOutcome:
        """Send ``app`` the push of a new job (or of ``job_id``) and wait for the answer;
        see ``LocalEmit.push``.

            outcome = local.push(app, "resize", {"url": "s3://a", "width": 64})
        """
        return self._call(
            self.local.push, app, name, payload, job_id=job_id, via=via, headers=headers,
            remaining_time=remaining_time, **spec,
        )  # fmt: skip

    # -- the loop -------------------------------------------------------------------

    def _state(self) -> tuple[BlockingPortal, LocalEmit, httpx.Client]:
        if self._running is None:
            raise RuntimeError("SyncLocalEmit is not started: use `with SyncLocalEmit() as local:`")
        return self._running

    def _call(self, func: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """``await func(*args, **kwargs)`` on the server's loop, this thread waiting."""

        async def call() -> T:
            return await func(*args, **kwargs)

        return self._state()[0].call(call)


async def _make(settings: dict[str, Any]) -> LocalEmit:
    """A started ``LocalEmit``, made on the loop that serves it."""
    local = LocalEmit(**settings)
    await local.__aenter__()
    return local


class _PortalTransport(httpx.BaseTransport):
    """A sync transport to an ASGI app served on a portal's loop: each request is sent
    there, and its whole answer read, while the calling thread waits."""

    def __init__(self, portal: BlockingPortal, app: Any) -> None:
        self._portal = portal
        self._transport = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        content = request.read()  # a sync body is read here, in the caller's thread
        sent = httpx.Request(
            request.method, request.url, headers=request.headers, content=content,
            extensions=request.extensions,
        )  # fmt: skip
        status, headers, raw = self._portal.call(self._send, sent)
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(raw))

    async def _send(self, request: httpx.Request) -> tuple[int, httpx.Headers, bytes]:
        response = await self._transport.handle_async_request(request)
        try:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        return response.status_code, response.headers, raw
