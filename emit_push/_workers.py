"""``client.workers``: run job functions from a client, the TypeScript SDK's way.

``create_push_handler(on_job)`` makes an ``EmitPush`` around one function (every job
name goes to it); ``handle_push(payload, on_job=...)`` handles one push you received
yourself; ``run_polling(on_job=...)`` polls for jobs. All share the core of ``EmitPush``;
job options are those of ``on_job``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._handlers import UNSET, KeepaliveInterval, OnError

if TYPE_CHECKING:
    from ._app import EmitPush
    from ._client import AsyncEmitClient, EmitClient
    from ._logger import LoggerOptions
    from ._push import PushResult

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
    on_job: Callable[..., Any],
    push_secret: str | list[str] | None,
    push_secret_header: str,
    options: dict[str, Any],
    **client_settings: Any,
) -> EmitPush:
    from ._app import ANY_NAME, EmitPush
    from ._handlers import JobOptions

    given = {k: options.pop(k) for k in list(options) if k in JobOptions.__slots__}
    if options:
        raise TypeError(f"unknown option {sorted(options)[0]!r}")
    job_options = {**_SDK_DEFAULTS, **given}
    app = EmitPush(
        push_secret=push_secret, push_secret_header=push_secret_header, **client_settings
    )
    app.on_job(ANY_NAME, **job_options)(on_job)
    return app


_SDK_DEFAULTS = {"auto_complete": False, "keepalive_interval": None}
"""The TypeScript SDK's defaults for its workers (``create_push_handler``, ``handle_push``,
``run_polling``): the function completes the job itself, no keepalives unless asked.
(``EmitPush`` handlers default to completing with the return value, and keepalives.)"""
_LOOP_OPTIONS = ("types", "count", "poll_interval", "max_backoff", "stop", "grace_period",
                 "handle_signals", "on_done")  # fmt: skip


def _split(arguments: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ``run_polling``'s arguments: the handler's options, and the loop's."""
    options = {k: v for k, v in arguments.items() if k not in {"self", "on_job"}}
    loop = {k: options.pop(k) for k in _LOOP_OPTIONS}
    return options, loop


class AsyncWorkers:
    """``AsyncEmitClient.workers``."""

    def __init__(self, client: AsyncEmitClient) -> None:
        self._client = client

    def create_push_handler(
        self,
        on_job: Callable[..., Any],
        *,
        push_secret: str | list[str] | None = UNSET,
        push_secret_header: str = "Authorization",
        **options: Any,
    ) -> EmitPush:
        """An ``EmitPush`` on this client that runs ``on_job`` for every pushed job.

        ``push_secret`` defaults to ``EMIT_PUSH_SECRET``, as ``EmitPush``'s does.

        handler = client.workers.create_push_handler(resize, push_secret="s3cret")
        result = await handler.handle_push(body, headers)      # or handler.asgi()
        """
        return _app(on_job, push_secret, push_secret_header, options, client=self._client)

    async def handle_push(
        self,
        payload: PushPayload,
        *,
        on_job: Callable[..., Any],
        headers: Mapping[str, str] | None = None,
        push_secret: str | list[str] | None = None,
        remaining_time: float | None = None,
        **options: Any,
    ) -> PushResult:
        """Handle one push you received yourself: claim the job and run ``on_job``.

        The secret is checked only when ``push_secret`` is given (then ``headers`` must
        carry it), for callers whose web framework has not authenticated the request.
        """
        app = self.create_push_handler(on_job, push_secret=push_secret, **options)
        app._warned = push_secret is None  # the caller checks its requests itself
        return await app.handle_push(_body(payload), headers or {}, remaining_time=remaining_time)

    async def run_polling(
        self,
        *,
        on_job: Callable[..., Any],
        types: str | Sequence[str] | None = None,
        count: int = 1,
        poll_interval: float = 1.0,
        max_backoff: float = 15.0,
        auto_ack: bool = True,
        auto_fail_on_error: bool = True,
        auto_complete: bool = False,
        keepalive_interval: KeepaliveInterval = None,
        stop_on_error: bool = False,
        on_error: OnError | None = None,
        logger: LoggerOptions | None = None,
        stop: asyncio.Event | threading.Event | None = None,
        grace_period: float = 30.0,
        handle_signals: bool = True,
        on_done: Callable[[PushResult], Any] | None = None,
    ) -> None:
        """Poll for jobs and run ``on_job`` on each, until stopped (SIGTERM, ``stop=``).

        Options and defaults as the TypeScript SDK's, plus ``grace_period`` (seconds
        running jobs get when stopping, then they are failed back), ``handle_signals``
        and ``on_done`` (sees each job's result); see ``EmitPush.run_polling``.
        """
        job_options, loop = _split(locals())
        app = _app(on_job, None, "Authorization", job_options, client=self._client)
        await app.run_polling(**loop)


class Workers:
    """``EmitClient.workers``: the same, for sync code (each push runs an event loop)."""

    def __init__(self, client: EmitClient) -> None:
        self._client = client

    def create_push_handler(
        self,
        on_job: Callable[..., Any],
        *,
        push_secret: str | list[str] | None = UNSET,
        push_secret_header: str = "Authorization",
        **options: Any,
    ) -> EmitPush:
        """An ``EmitPush`` with this client's settings that runs ``on_job`` for every job.

        Its calls go through its own async client (one per event loop), since pushes are
        handled on an event loop: serve it with ``handler.asgi()`` or an adapter.
        """
        config = self._client._config
        return _app(
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
        **options: Any,
    ) -> PushResult:
        """Handle one push you received yourself, blocking until the job has run."""
        app = self.create_push_handler(on_job, push_secret=push_secret, **options)
        app._warned = push_secret is None  # the caller checks its requests itself

        async def run() -> PushResult:
            try:
                return await app.handle_push(
                    _body(payload), headers or {}, remaining_time=remaining_time
                )
            finally:
                await app.aclose()

        return asyncio.run(run())

    def run_polling(
        self,
        *,
        on_job: Callable[..., Any],
        types: str | Sequence[str] | None = None,
        count: int = 1,
        poll_interval: float = 1.0,
        max_backoff: float = 15.0,
        auto_ack: bool = True,
        auto_fail_on_error: bool = True,
        auto_complete: bool = False,
        keepalive_interval: KeepaliveInterval = None,
        stop_on_error: bool = False,
        on_error: OnError | None = None,
        logger: LoggerOptions | None = None,
        stop: threading.Event | None = None,
        grace_period: float = 30.0,
        handle_signals: bool = True,
        on_done: Callable[[PushResult], Any] | None = None,
    ) -> None:
        """Poll and run ``on_job`` until stopped; blocks. See ``AsyncWorkers.run_polling``.

        ``stop`` is a ``threading.Event``, to be set from another thread.
        """
        job_options, loop = _split(locals())
        app = self.create_push_handler(on_job, **job_options)

        async def run() -> None:
            try:
                await app.run_polling(**loop)
            finally:
                await app.aclose()

        asyncio.run(run())
