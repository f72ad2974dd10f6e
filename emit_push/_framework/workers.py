"""``client.workers``: run job functions from a client, the TypeScript SDK's way.

``create_push_handler(on_job)`` makes an ``EmitPush`` around one function (every job
name goes to it); ``handle_push(payload, on_job=...)`` handles one push you received
yourself; ``run_polling(on_job=...)`` polls for jobs. All are ``EmitPush`` underneath;
job options are ``on_job``'s (``JobOptions``), with the TypeScript SDK's defaults
(``SDK_DEFAULTS``: the function completes the job itself, no keepalives unless asked).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Unpack

from .handlers import UNSET
from .options import DEFAULTS, POLL_DEFAULTS, SDK_DEFAULTS, check_names, split
from .runner import ANY_NAME

if TYPE_CHECKING:
    from .._sdk.client import AsyncClient, Client
    from .app import EmitPush
    from .options import JobOptions, WorkerOptions
    from .push import PushResult

__all__ = ["AsyncWorkers", "Workers"]

PushPayload = Mapping[str, Any] | bytes | str
"""A push as received: its parsed JSON body, or the raw body."""


def _body(payload: PushPayload) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(dict(payload)).encode()


def _app(
    where: str,
    on_job: Callable[..., Any],
    push_secret: str | list[str] | None,
    push_secret_header: str,
    options: Mapping[str, Any],
    **settings: Any,
) -> EmitPush:
    """An app whose one (catch-all) handler is ``on_job``, with the SDK's defaults under
    ``options``; handlers added to it later get ``EmitPush``'s own defaults."""
    from .app import EmitPush

    check_names(options, DEFAULTS, where, "job options")  # on_job would take payload=
    app = EmitPush(push_secret=push_secret, push_secret_header=push_secret_header, **settings)
    app.on_job(ANY_NAME, **{**SDK_DEFAULTS, **options})(on_job)
    return app


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
    ) -> EmitPush:
        """An ``EmitPush`` on this client that runs ``on_job`` for every pushed job.

        ``push_secret`` defaults to ``EMIT_PUSH_SECRET``, as ``EmitPush``'s does.

        handler = client.workers.create_push_handler(resize, push_secret="s3cret")
        result = await handler.handle_push(body, headers)      # or handler.asgi()
        """
        where = "create_push_handler"
        return _app(where, on_job, push_secret, push_secret_header, options, client=self._client)

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
        app.runner.warn_without_secret = push_secret is not None  # else the caller checks
        return await app.handle_push(_body(payload), headers or {}, remaining_time=remaining_time)

    async def run_polling(
        self, *, on_job: Callable[..., Any], **options: Unpack[WorkerOptions]
    ) -> None:
        """Poll for jobs and run ``on_job`` on each, until stopped (SIGTERM, ``stop=``).

        Options and defaults as the TypeScript SDK's, plus ``grace_period`` (seconds
        running jobs get when stopping, then they are failed back), ``handle_signals``
        and ``on_done`` (sees each job's result); see ``EmitPush.run_polling``.
        """
        check_names(options, {**DEFAULTS, **POLL_DEFAULTS}, "run_polling")
        job_options, loop = split(options)
        app = _app("run_polling", on_job, None, "Authorization", job_options, client=self._client)
        await app.run_polling(**loop)


class Workers:
    """``EmitClient.workers``: the same, for sync code (each push runs an event loop)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create_push_handler(
        self,
        on_job: Callable[..., Any],
        *,
        push_secret: str | list[str] | None = UNSET,
        push_secret_header: str = "Authorization",
        **options: Unpack[JobOptions],
    ) -> EmitPush:
        """An ``EmitPush`` with this client's settings that runs ``on_job`` for every job.

        Its calls go through its own async client (one per event loop), since pushes are
        handled on an event loop: serve it with ``handler.asgi()`` or an adapter.
        """
        config = self._client.config
        return _app(
            "create_push_handler",
            on_job,
            push_secret,
            push_secret_header,
            options,
            space_id=config.space_id,
            api_key=config.api_key,
            base_url=config.base_url,
            api_key_header=config.api_key_header,
        )

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
        app.runner.warn_without_secret = push_secret is not None  # else the caller checks

        async def run() -> PushResult:
            try:
                return await app.handle_push(
                    _body(payload), headers or {}, remaining_time=remaining_time
                )
            finally:
                await app.aclose()

        return asyncio.run(run())

    def run_polling(self, *, on_job: Callable[..., Any], **options: Unpack[WorkerOptions]) -> None:
        """Poll and run ``on_job`` until stopped; blocks. See ``AsyncWorkers.run_polling``.

        ``stop`` is a ``threading.Event``, to be set from another thread.
        """
        check_names(options, {**DEFAULTS, **POLL_DEFAULTS}, "run_polling")
        job_options, loop = split(options)
        app = self.create_push_handler(on_job, **job_options)

        async def run() -> None:
            try:
                await app.run_polling(**loop)
            finally:
                await app.aclose()

        asyncio.run(run())
