"""``LocalEmit``: the local emit server in-process, with fixed keys and a clock you move.

Everything goes through ``httpx.ASGITransport``: no port, no network. ``push`` sends an
app the ``job.pending`` push emit.run would send, through its real push path, and reads
the job back as the service stored it.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from .._client import AsyncEmitClient
from .._exceptions import NotFoundError
from .._extras import requires
from .._framework.app import EmitPush
from .._framework.push import PushResult, PushStatus
from .._wire.models import JobDetails, LogEntry, format_timestamp
from ._bound import push_headers, with_client

with requires("server", "LocalEmit"):  # the local emit server is a Starlette app
    from ..server import (
        API_PREFIX,
        Clock,
        Credentials,
        EmitServer,
        KeySpec,
        ManualClock,
        ServerConfig,
    )

__all__ = ["LocalEmit", "PushOutcome"]

SPACE_ID = "01JLOCALEMITTESTSPACE00000"
WORKER_KEY = "emit_local_test_worker_key"
PRODUCER_KEY = "emit_local_test_producer_key"
PROGRESS_TOKEN = "emit_local_test_progress_token"
ADMIN_KEY = "emit_local_test_admin_key"
_EVERY_SCOPE = ("jobs:worker", "jobs:create", "jobs:kill", "space:admin")


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """How a push ended (``result``, what the app answered) and the job as stored after it."""

    result: PushResult
    stored: JobDetails | None
    """The job read back after the push; None when the push named no existing job."""
    logs: list[LogEntry]
    """The job's logs as the service stored them."""

    @property
    def job(self) -> JobDetails:
        """The job as stored after the push (``LookupError`` when there is none)."""
        if self.stored is None:
            raise LookupError(f"no job {self.result.job_id!r} on the server")
        return self.stored

    @property
    def status(self) -> PushStatus | None:
        """``completed``, ``failed``, ``killed``, ``skipped``, ``ignored``; None: refused."""
        return self.result.status

    @property
    def job_id(self) -> str | None:
        """The id of the job pushed."""
        return self.stored.id if self.stored is not None else self.result.job_id


class LocalEmit:
    """The local emit server, in-process: fixed keys, an in-memory database, no network.

    The clock is a ``ManualClock`` unless given: timers (scheduled jobs, delivery and
    execution timeouts) fire only when ``advance`` moves it. Other keyword arguments are
    ``ServerConfig`` settings. Only a job's ``callback_url`` (or push settings put through
    ``http``) would make the server send real HTTP requests.

        async with LocalEmit() as local:
            outcome = await local.push(app, "resize", {"url": "s3://a", "width": 64})
            assert outcome.status == "completed"
            assert outcome.job.result == {"thumbnail": "s3://a?w=64"}
    """

    space_id = SPACE_ID
    worker_key = WORKER_KEY
    """Has ``jobs:worker``: what bound apps use."""
    admin_key = ADMIN_KEY
    """Has every scope: what ``client()`` and ``http`` use unless told otherwise."""
    base_url = f"http://emit.test{API_PREFIX}"

    def __init__(self, *, clock: Clock | None = None, **settings: Any) -> None:
        self.clock: Clock = clock if clock is not None else ManualClock()
        config = ServerConfig(
            db_path=":memory:", space_id=SPACE_ID, worker_key=WORKER_KEY,
            producer_key=PRODUCER_KEY, progress_token=PROGRESS_TOKEN,
            api_keys=[KeySpec(ADMIN_KEY, _EVERY_SCOPE, name="admin")], clock=self.clock,
            **settings,
        )  # fmt: skip
        self.server = EmitServer(config)
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.server.app),
            base_url=self.base_url,
            headers={"x-api-key": ADMIN_KEY},
        )
        """httpx to the server's API with every scope, for calls the SDK does not make."""
        self._clients: list[AsyncEmitClient] = []
        self._admin = self.client()
        self._bound: weakref.WeakKeyDictionary[EmitPush, EmitPush] = weakref.WeakKeyDictionary()
        self._ours: weakref.WeakSet[EmitPush] = weakref.WeakSet()
        self._asgi: weakref.WeakKeyDictionary[EmitPush, Any] = weakref.WeakKeyDictionary()

    @property
    def credentials(self) -> Credentials:
        """The space id and its worker key, producer key and progress token."""
        return self.server.credentials

    async def __aenter__(self) -> LocalEmit:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "LocalEmit runs on asyncio (with anyio's pytest plugin: anyio_backend 'asyncio')"
            ) from None
        await self.server.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for client in self._clients:
            await client.aclose()
        await self.http.aclose()
        await self.server.stop()

    def client(self, *, api_key: str | None = None, **options: Any) -> AsyncEmitClient:
        """An ``AsyncEmitClient`` bound to this server (every scope unless ``api_key``).

        Closed when the server stops; ``options`` are the client's (``max_retries``...).
        """
        options.setdefault("transport", httpx.ASGITransport(app=self.server.app))
        client = AsyncEmitClient(
            space_id=SPACE_ID, api_key=api_key or ADMIN_KEY, base_url=self.base_url, **options
        )
        self._clients.append(client)
        return client

    def bind(self, app: EmitPush) -> EmitPush:
        """A copy of ``app`` that works this server's jobs with the worker key.

        The copy shares the handlers, options, middleware and push secret; ``app`` itself
        is left as it is, still pointing at whatever it was configured for.
        """
        if app in self._ours:
            return app
        bound = self._bound.get(app)
        if bound is None:
            bound = self._bound[app] = with_client(app, self.client(api_key=WORKER_KEY))
            self._ours.add(bound)
        return bound

    async def create(self, name: str, payload: Any = None, **spec: Any) -> str:
        """Create a job (``spec``: ``max_retries``, ``timeout_seconds``...); its id."""
        ref = await self._admin.jobs.create({"name": name, "payload": payload, **spec})
        return ref.id

    async def job(self, job_id: str) -> JobDetails:
        """The job as stored, with its event history (``progress`` and ``checkpoint`` are
        in ``model_extra``)."""
        return await self._admin.jobs.get(job_id)

    async def logs(self, job_id: str) -> list[LogEntry]:
        """Every log entry of the job, oldest first."""
        entries: list[LogEntry] = []
        after = None
        while True:
            page = await self._admin.jobs.logs(job_id, after=after, limit=1000)
            entries += page.logs
            if page.next_cursor is None or not page.logs:
                return entries
            after = page.next_cursor

    async def advance(self, seconds: float) -> int:
        """Move the clock and fire what came due (timeouts, releases); how many fired."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("advance() needs the default ManualClock")
        self.clock.advance(seconds)
        fired = self.server.scheduler.run_due()
        await self.server.scheduler.in_flight()
        return fired

    async def push(
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
        """Send ``app`` the ``job.pending`` push of a new job (``name``, ``payload``,
        ``spec``) or of the job ``job_id``, as emit.run would, and wait for the answer.

        The app is bound to this server (``bind``). ``via="handle_push"`` calls
        ``app.handle_push``; ``via="asgi"`` POSTs to ``app.asgi()``. The push carries the
        app's push secret unless ``headers`` says what it carries. ``remaining_time`` is
        the platform's time left (as on Lambda).

            outcome = await local.push(app, "resize", {"url": "s3://a", "width": 64})
        """
        if (name is None) == (job_id is None):
            raise TypeError("push() takes a job name (and payload) or job_id=, not both")
        if name is not None:
            job_id = await self.create(name, payload, **spec)
        assert job_id is not None
        try:
            stored: JobDetails | None = await self.job(job_id)
        except NotFoundError:
            stored = None
        body: dict[str, Any] = {"type": "job.pending", "jobId": job_id, "spaceId": SPACE_ID}
        if stored is not None:
            body |= {"name": stored.name, "attemptNumber": stored.attempt_number}
        body["timestamp"] = format_timestamp(self.clock.now_ms() / 1000)
        bound = self.bind(app)
        sent = dict(push_headers(bound) if headers is None else headers)
        content = json.dumps(body).encode()
        if via == "asgi":
            result = await self._post(bound, content, sent, remaining_time)
        else:
            result = await bound.handle_push(content, sent, remaining_time=remaining_time)
        if stored is not None:
            stored = await self.job(job_id)
        return PushOutcome(result, stored, await self.logs(job_id) if stored else [])

    async def _post(
        self, app: EmitPush, content: bytes, headers: dict[str, str], remaining: float | None
    ) -> PushResult:
        asgi = self._asgi.get(app)
        if asgi is None:
            asgi = self._asgi[app] = app.asgi()
        transport = httpx.ASGITransport(app=_with_remaining_time(asgi, remaining))
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as web:
            response = await web.post("/", content=content, headers=headers)
        data = response.json()
        return PushResult(
            data.get("status"),
            data.get("jobId"),
            http_status=response.status_code,
            error=data.get("error"),
            code=data.get("code"),
            name=data.get("name"),
            attempt_number=data.get("attemptNumber"),
            reason=data.get("reason"),
            headers={
                key: value
                for key, value in response.headers.items()
                if key not in ("content-type", "content-length")
            },
        )


class _LambdaContext:
    def __init__(self, remaining: float) -> None:
        self._until = asyncio.get_running_loop().time() + remaining

    def get_remaining_time_in_millis(self) -> int:
        return int((self._until - asyncio.get_running_loop().time()) * 1000)


def _with_remaining_time(asgi: Any, remaining: float | None) -> Any:
    """The ASGI app, seeing the platform's remaining time as Mangum passes Lambda's."""
    if remaining is None:
        return asgi

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asgi({**scope, "aws.context": _LambdaContext(remaining)}, receive, send)

    return app
