"""``client.workers``: run job functions from a client, the TypeScript SDK's way.

``create_push_handler(on_job)`` makes a :class:`PushHandler` (an ``EmitPush``) around one
function (every job name goes to it); ``handle_push(payload, on_job=...)`` handles one
push you received yourself; ``run_polling(on_job=...)`` polls for jobs. All are
``EmitPush`` underneath;
job options are ``on_job``'s (``JobOptions``), with the TypeScript SDK's defaults
(``SDK_DEFAULTS``: the function completes the job itself, no keepalives unless asked).
Every call goes through the client: the sync ``EmitClient``'s in threads
(``ThreadedClient``), so its headers, timeout, retries and transport all apply.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, Unpack, cast, overload

import httpx

from .._sdk.client import AsyncClient
from .app import EmitPush
from .handlers import UNSET
from .options import DEFAULTS, POLL_DEFAULTS, SDK_DEFAULTS, check_names, split
from .runner import ANY_NAME

if TYPE_CHECKING:
    from .._sdk.client import Client
    from .._sdk.jobs import AsyncJobs
    from .._sdk.transport import AsyncDriver
    from .._wire.endpoints import Call
    from .options import JobOptions, WorkerOptions
    from .push import PushResult

__all__ = ["AsyncWorkers", "PushHandler", "PushPayload", "ThreadedClient", "Workers"]

T = TypeVar("T")

PushPayload = Mapping[str, Any] | bytes | str
"""A push as received: its parsed JSON body, or the raw body."""

LOOP_OPTIONS = ("on_error", "stop_on_error")
"""The job options that ``run_polling`` also gives its loop: a failed poll goes to
``on_error`` (with no job), and ``stop_on_error`` ends the loop with it."""


def _body(payload: PushPayload) -> bytes:
    """The body of a push given parsed (a mapping), as text, or as bytes.

    Raises ``TypeError`` or ``ValueError`` for a mapping JSON cannot hold.
    """
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    if not isinstance(payload, Mapping):
        raise TypeError(f"a push is a mapping, bytes or str, not {type(payload).__name__}")
    return json.dumps(dict(payload), allow_nan=False).encode()


class PushHandler(EmitPush):
    """What ``client.workers.create_push_handler(...)`` returns: an ``EmitPush`` whose
    ``handle_push`` also takes the push's parsed payload, as the TypeScript SDK's
    ``handlePush(payload)`` does.

    Two forms; which one decides whether the push secret is checked:

    - ``await handler.handle_push(payload)``: the push's JSON body, parsed (a mapping; its
      raw ``bytes`` or ``str`` do too). *You* vouch for the request: your web framework
      authenticated it, so no secret is checked (there are no headers to check it in).
      The body is still validated (``jobId``, ``type``, ``spaceId``) before any claim.
    - ``await handler.handle_push(body, headers)``: the raw request, as ``EmitPush`` and
      the adapters take it; the push secret is checked against ``headers`` (when one is
      set). ``body`` may also be the parsed payload.

    Both return the ``PushResult``; ``result.http()`` (or ``result.body()``) is the
    answer to send. ``handler.asgi()`` and the adapters serve it like any ``EmitPush``.

        handler = client.workers.create_push_handler(resize)
        result = await handler.handle_push(await request.json())   # authenticated by you
        result = await handler.handle_push(await request.body(), request.headers)
    """

    @overload
    async def handle_push(
        self,
        payload: PushPayload,
        /,
        *,
        remaining_time: float | None = None,
        deadline: float | None = None,
    ) -> PushResult: ...
    @overload
    async def handle_push(
        self,
        body: PushPayload,
        headers: Mapping[str, str],
        *,
        remaining_time: float | None = None,
        deadline: float | None = None,
    ) -> PushResult: ...
    async def handle_push(
        self,
        body: PushPayload,
        headers: Mapping[str, str] | None = None,
        *,
        remaining_time: float | None = None,
        deadline: float | None = None,
    ) -> PushResult:
        """Handle one push: its parsed payload alone (the caller authenticated it), or
        its raw body and headers (the push secret is checked). See :class:`PushHandler`."""
        import time

        from .auth import PushAuth
        from .push import PushResult, check_push

        try:
            raw = _body(body)
        except (TypeError, ValueError) as exc:
            return PushResult.refused(400, "invalid_push", f"the payload is not JSON: {exc}")
        if headers is not None:
            return await super().handle_push(
                raw, headers, remaining_time=remaining_time, deadline=deadline
            )
        runner = self.runner
        runner.prepare()
        checked = check_push(
            raw, {}, auth=PushAuth(), space_id=runner.space_id, max_bytes=runner.max_push_bytes
        )
        if isinstance(checked, PushResult):
            return checked
        if remaining_time is not None:
            ends = time.monotonic() + remaining_time
            deadline = ends if deadline is None else min(deadline, ends)
        return await runner.run_push(checked, deadline=deadline)


def _app(
    where: str,
    on_job: Callable[..., Any],
    push_secret: str | list[str] | None,
    push_secret_header: str,
    options: Mapping[str, Any],
    client: AsyncClient,
    app_options: Mapping[str, Any] | None = None,
) -> PushHandler:
    """An app on ``client`` whose one (catch-all) handler is ``on_job``, with the SDK's
    defaults under ``options``; handlers added to it later get ``EmitPush``'s own
    defaults (and ``app_options``)."""
    check_names(options, DEFAULTS, where, "job options")  # on_job would take payload=
    app = PushHandler(
        push_secret=push_secret,
        push_secret_header=push_secret_header,
        client=client,
        **(app_options or {}),
    )
    app.on_job(ANY_NAME, **{**SDK_DEFAULTS, **options})(on_job)
    return app


def _polling_app(
    on_job: Callable[..., Any], options: Mapping[str, Any], client: AsyncClient
) -> tuple[PushHandler, dict[str, Any]]:
    """The app ``run_polling`` runs, and the loop's options. The app is the loop's own,
    so the function's ``on_error`` and ``stop_on_error`` are the loop's too."""
    check_names(options, {**DEFAULTS, **POLL_DEFAULTS}, "run_polling")
    job_options, loop = split(options)
    app_options = {name: job_options[name] for name in LOOP_OPTIONS if name in job_options}
    app = _app("run_polling", on_job, None, "Authorization", job_options, client, app_options)
    return app, loop


class ThreadedClient(AsyncClient):
    """An ``AsyncClient`` that sends every call through a sync ``Client``, in a thread.

    So the sync ``client.workers`` run on the client's own configuration, whole: its
    headers, timeout, retries, transport or ``http_client``, and key function. No HTTP
    runs on an event loop, so one serves every loop (each sync ``handle_push`` runs one of
    its own). Closing it leaves the sync client open: whoever made that closes it.
    """

    def __init__(self, client: Client) -> None:
        config = client.config
        super().__init__(
            space_id=config.space_id,
            api_key=config.api_key,
            base_url=config.base_url,
            api_key_header=config.api_key_header,
            headers=config.headers,
            timeout=config.timeout,
            max_retries=config.retry.max_retries,
            transport=_NoTransport(),
        )
        self._threads = _InThreads(client)

    @functools.cached_property
    def jobs(self) -> AsyncJobs:
        """Create, read and work jobs (through the sync client too)."""
        from .._sdk.jobs import AsyncJobs

        return AsyncJobs(cast("AsyncDriver", self._threads))

    async def send(self, call: Call[T], *, until: float | None = None) -> T:
        """Send ``call`` with the sync client (its retries included), in a thread."""
        return await self._threads.send(call, until)


class _InThreads:
    """A driver (see ``_sdk.transport``) that sends with a sync client, in threads."""

    def __init__(self, client: Client) -> None:
        self.config = client.config
        self._client = client

    async def send(self, call: Call[T], until: float | None = None) -> T:
        return await asyncio.to_thread(self._client.send, call, until=until)

    async def aclose(self) -> None:
        """Nothing: the sync client is its maker's to close."""


class _NoTransport(httpx.AsyncBaseTransport):
    """The HTTP a ``ThreadedClient`` never sends on an event loop."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a ThreadedClient sends through its sync client")


class AsyncWorkers:
    """``AsyncEmitClient.workers``."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    def create_push_handler(
        self,
        on_job: Callable[..., Any],
        *,
        push_secret: str | list[str] | None = UNSET,
        push_secret_header: str = "Authorization",
        **options: Unpack[JobOptions],
    ) -> PushHandler:
        """A :class:`PushHandler` (an ``EmitPush``) on this client that runs ``on_job`` for
        every pushed job.

        ``push_secret`` defaults to ``EMIT_PUSH_SECRET``, as ``EmitPush``'s does; it is
        checked when the push comes with its headers (or through ``handler.asgi()``).

            handler = client.workers.create_push_handler(resize, push_secret="s3cret")
            result = await handler.handle_push(payload)            # you authenticated it
            result = await handler.handle_push(body, headers)      # the secret is checked
        """
        where = "create_push_handler"
        return _app(where, on_job, push_secret, push_secret_header, options, self._client)

    async def handle_push(
        self,
        payload: PushPayload,
        *,
        on_job: Callable[..., Any],
        headers: Mapping[str, str] | None = None,
        push_secret: str | list[str] | None = None,
        remaining_time: float | None = None,
        **options: Unpack[JobOptions],
    ) -> PushResult:
        """Handle one push you received yourself: claim the job and run ``on_job``.

        The secret is checked only when ``push_secret`` is given (then ``headers`` must
        carry it), for callers whose web framework has not authenticated the request.
        """
        app = self.create_push_handler(on_job, push_secret=push_secret, **options)
        if push_secret is None:  # the caller authenticated the request
            return await app.handle_push(payload, remaining_time=remaining_time)
        return await app.handle_push(payload, headers or {}, remaining_time=remaining_time)

    async def run_polling(
        self, *, on_job: Callable[..., Any], **options: Unpack[WorkerOptions]
    ) -> None:
        """Poll for jobs and run ``on_job`` on each, until stopped (SIGTERM, ``stop=``).

        Options and defaults as the TypeScript SDK's, plus ``grace_period`` (seconds
        running jobs get when stopping, then they are failed back), ``handle_signals``
        and ``on_done`` (sees each job's result); see ``EmitPush.run_polling``. As in the
        TypeScript SDK, a failed poll goes to ``on_error`` with ``None`` for the job and
        the loop backs off and polls again, or, with ``stop_on_error``, ends raising it.
        """
        app, loop = _polling_app(on_job, options, self._client)
        await app.run_polling(**loop)


class Workers:
    """``EmitClient.workers``: the same, for sync code (each push runs an event loop).

    Every call goes through the client itself (in threads): its headers, timeout,
    retries and transport apply to the workers' calls as to its own.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    @functools.cached_property
    def _threaded(self) -> ThreadedClient:
        return ThreadedClient(self._client)

    def create_push_handler(
        self,
        on_job: Callable[..., Any],
        *,
        push_secret: str | list[str] | None = UNSET,
        push_secret_header: str = "Authorization",
        **options: Unpack[JobOptions],
    ) -> PushHandler:
        """A :class:`PushHandler` (an ``EmitPush``) on this client that runs ``on_job`` for
        every job.

        Pushes are handled on an event loop: ``await handler.handle_push(payload)``, or
        serve it with ``handler.asgi()`` or an adapter (for one push from sync code,
        ``client.workers.handle_push``). Its calls go through this client, in threads,
        on any loop.
        """
        where = "create_push_handler"
        return _app(where, on_job, push_secret, push_secret_header, options, self._threaded)

    def handle_push(
        self,
        payload: PushPayload,
        *,
        on_job: Callable[..., Any],
        headers: Mapping[str, str] | None = None,
        push_secret: str | list[str] | None = None,
        remaining_time: float | None = None,
        **options: Unpack[JobOptions],
    ) -> PushResult:
        """Handle one push you received yourself, blocking until the job has run."""
        app = self.create_push_handler(on_job, push_secret=push_secret, **options)

        async def run() -> PushResult:
            try:
                if push_secret is None:  # the caller authenticated the request
                    return await app.handle_push(payload, remaining_time=remaining_time)
                return await app.handle_push(payload, headers or {}, remaining_time=remaining_time)
            finally:
                await app.aclose()

        return asyncio.run(run())

    def run_polling(self, *, on_job: Callable[..., Any], **options: Unpack[WorkerOptions]) -> None:
        """Poll and run ``on_job`` until stopped; blocks. See ``AsyncWorkers.run_polling``.

        ``stop`` is a ``threading.Event``, to be set from another thread.
        """
        app, loop = _polling_app(on_job, options, self._threaded)

        async def run() -> None:
            try:
                await app.run_polling(**loop)
            finally:
                await app.aclose()

        asyncio.run(run())
