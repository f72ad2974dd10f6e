"""``EmitPush``: the registry of ``@on_job`` handlers, and the push-handling core.

``handle_push(body, headers)`` is the whole of what a push endpoint does, without any web
framework: check the push (``_push``), pick the handler, claim the job, run it
(``_execution``) and say how it ended. The adapters only translate requests into it.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ._exceptions import (
    APIConnectionError,
    ConfigurationError,
    ConflictError,
    EmitError,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from ._handlers import UNSET, Handler, JobOptions, KeepaliveInterval, OnError, make_handler
from ._push_auth import MAX_PUSH_BYTES, PushAuth

# Only what registering handlers and serving needs is imported here. The API client,
# the runner and the wire models (and with them httpx) come with the first push: a
# Lambda's cold start pays for its handlers, not for the SDK (tests/test_imports.py).
if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ._client import AsyncEmitClient
    from ._execution import Middleware
    from ._handler_job import Job
    from ._logger import LoggerOptions
    from ._models import JobDescriptor
    from ._push import Push, PushResult
    from ._settings import ApiKey

__all__ = ["EmitPush", "default_app", "on_job"]

log = logging.getLogger("emit_push")
F = TypeVar("F", bound=Callable[..., Any])
ANY_NAME = "*"
"""Register a handler under this name to take jobs that no other handler names."""


class EmitPush:
    """Your ``@on_job`` functions, served from push (and polling) on emit.run.

    Settings default from the environment: ``EMIT_SPACE_ID``, ``EMIT_API_KEY``,
    ``EMIT_BASE_URL`` and ``EMIT_PUSH_SECRET`` (comma-separated for rotation). Job options
    given here are the defaults of every handler; ``on_job`` can override each.

        app = EmitPush()

        @app.on_job("transcode")
        async def transcode(job: Job[Transcode]) -> dict:
            await job.progress(10, "Downloading source")
            return {"outputUrl": f"s3://final/{job.payload.output_key}"}

        asgi = app.asgi()              # or adapters.aws_lambda.lambda_handler(app), ...
    """

    def __init__(
        self,
        *,
        space_id: str | None = None,
        api_key: ApiKey | None = None,
        base_url: str | None = None,
        api_key_header: Literal["x-api-key", "authorization"] = "x-api-key",
        push_secret: str | Sequence[str] | None = UNSET,
        push_secret_header: str = "Authorization",
        client: AsyncEmitClient | None = None,
        max_push_bytes: int = MAX_PUSH_BYTES,
        auto_ack: bool = True,
        auto_fail_on_error: bool = True,
        auto_complete: bool = True,
        keepalive_interval: KeepaliveInterval = "auto",
        stop_on_error: bool = False,
        on_error: OnError | None = None,
        logger: LoggerOptions | None = None,
        max_runtime: float | None = None,
        deadline_margin: float = 1.0,
    ) -> None:
        if push_secret is UNSET:
            push_secret = os.environ.get("EMIT_PUSH_SECRET") or None
        if client is not None and not _is_client(client):
            raise ConfigurationError("client must be an AsyncEmitClient")
        self.options = JobOptions(
            auto_ack=auto_ack,
            auto_fail_on_error=auto_fail_on_error,
            auto_complete=auto_complete,
            keepalive_interval=keepalive_interval,
            stop_on_error=stop_on_error,
            on_error=on_error,
            logger=logger,
            max_runtime=max_runtime,
            deadline_margin=deadline_margin,
        )
        self._auth = PushAuth.of(push_secret, push_secret_header)
        self._client_settings: dict[str, Any] = {
            "space_id": space_id,
            "api_key": api_key,
            "base_url": base_url,
            "api_key_header": api_key_header,
        }
        self._client = client
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncEmitClient]
        self._clients = weakref.WeakKeyDictionary()
        self._space_id = client.space_id if client is not None else space_id
        self._max_push_bytes = max_push_bytes
        self._handlers: dict[str, Handler] = {}
        self._middleware: list[Middleware] = []
        self._prepared = False
        self._warned = False
        self._background: set[asyncio.Task[PushResult]] = set()
        self._abort: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"EmitPush(handlers={sorted(self._handlers)!r})"

    # -- registration ---------------------------------------------------------------

    def on_job(
        self,
        name: str,
        *,
        payload: Any = UNSET,
        auto_ack: bool = UNSET,
        auto_fail_on_error: bool = UNSET,
        auto_complete: bool = UNSET,
        keepalive_interval: KeepaliveInterval = UNSET,
        stop_on_error: bool = UNSET,
        on_error: OnError | None = UNSET,
        logger: LoggerOptions | None = UNSET,
        max_runtime: float | None = UNSET,
        deadline_margin: float = UNSET,
    ) -> Callable[[F], F]:
        """Register the decorated ``def`` or ``async def`` as the handler of job ``name``.

        The payload type comes from the annotation (``job: Job[Model]``) or ``payload=``;
        the options override the app's. ``"*"`` takes every job no other handler names.
        """
        options = self.options.merged(
            auto_ack=auto_ack,
            auto_fail_on_error=auto_fail_on_error,
            auto_complete=auto_complete,
            keepalive_interval=keepalive_interval,
            stop_on_error=stop_on_error,
            on_error=on_error,
            logger=logger,
            max_runtime=max_runtime,
            deadline_margin=deadline_margin,
        )

        def register(func: F) -> F:
            if name in self._handlers:
                raise ConfigurationError(f"job {name!r} already has a handler")
            self._handlers[name] = make_handler(name, func, options, payload)
            return func

        return register

    def middleware(self, func: Middleware) -> Middleware:
        """Register ``async def middleware(job, call_next)`` around every run.

        Middleware receives the async ``Job`` (also for ``def`` handlers) and returns what
        ``await call_next()`` returned: the place for tracing, metrics, context.
        """
        self._middleware.append(func)
        return func

    def handler_for(self, name: str) -> Handler | None:
        return self._handlers.get(name) or self._handlers.get(ANY_NAME)

    @property
    def handlers(self) -> Mapping[str, Handler]:
        return dict(self._handlers)

    # -- configuration --------------------------------------------------------------

    def prepare(self) -> None:
        """Check the settings now (adapters call this when they are built).

        Raises ``ConfigurationError`` for a missing space or key.
        """
        if self._prepared:
            return
        if self._client is None:
            from ._settings import load_settings

            settings = load_settings(
                client="EmitPush", allow_async_key=True, **self._client_settings
            )
            self._space_id = settings.space_id
        self._prepared = True

    def serving(self) -> None:
        """A push endpoint of this app starts: settings checked; one warning, per app,
        when no push secret is set (then every push is accepted)."""
        self.prepare()
        if not self._auth.enabled and not self._warned:
            self._warned = True
            log.warning(
                "emit-push: no push secret (EMIT_PUSH_SECRET): every push is accepted. Set one"
                " and add it as a custom header in the space's push settings."
            )

    @property
    def push_auth(self) -> PushAuth:
        """The push secrets this app accepts, and the header they come in."""
        return self._auth

    def with_client(self, client: AsyncEmitClient) -> EmitPush:
        """A copy of this app whose API calls go through ``client`` (tests, other spaces).

        The copy starts with this app's handlers, middleware, options and push secrets;
        registering on either afterwards does not change the other.
        """
        bound = copy.copy(self)
        bound._client = client
        bound._clients = weakref.WeakKeyDictionary()
        bound._space_id = client.space_id
        bound._handlers = dict(self._handlers)
        bound._middleware = list(self._middleware)
        bound._prepared = False
        return bound

    def client(self) -> AsyncEmitClient:
        """The API client for the running event loop (one connection pool per loop)."""
        if self._client is not None:
            return self._client
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            from ._client import AsyncEmitClient

            client = self._clients[loop] = AsyncEmitClient(**self._client_settings)
        return client

    async def aclose(self, grace_period: float = 30.0) -> None:
        """Stop: background runs get ``grace_period`` seconds, then are stopped and failed
        back (so they retry); then the clients this app made are closed.

        Call it from your app's shutdown (e.g. FastAPI's lifespan) when you mount
        ``app.asgi(background=True)``: mounted apps get no lifespan events of their own.
        """
        if self._background:
            await asyncio.wait(set(self._background), timeout=grace_period)
            if self._abort is not None:
                self._abort.set()
            if self._background:
                await asyncio.wait(set(self._background), timeout=10)
        clients, self._clients = list(self._clients.values()), weakref.WeakKeyDictionary()
        for client in clients:
            await client.aclose()

    # -- push -----------------------------------------------------------------------

    def check(self, body: bytes, headers: Mapping[str, str]) -> Push | PushResult:
        """Authenticate and validate a push, without I/O (see ``_push.check_push``)."""
        from ._push import check_push

        self.serving()
        lowered = {key.lower(): value for key, value in headers.items()}
        return check_push(
            body, lowered, auth=self._auth, space_id=self._space_id, max_bytes=self._max_push_bytes
        )

    async def handle_push(
        self,
        body: bytes,
        headers: Mapping[str, str],
        *,
        remaining_time: float | None = None,
        deadline: float | None = None,
    ) -> PushResult:
        """Handle one ``job.pending`` push.

        ``remaining_time`` is the seconds the platform still gives (``deadline`` the same as
        a ``time.monotonic()`` value, when the clock started before this call). Returns how
        it ended; ``result.http()`` is the answer to send. Raises only when a handler
        failed and its ``stop_on_error`` asks for the error.
        """
        from ._push import PushResult

        if remaining_time is not None:
            ends = time.monotonic() + remaining_time
            deadline = ends if deadline is None else min(deadline, ends)
        checked = self.check(body, headers)
        if isinstance(checked, PushResult):
            return checked
        return await self.run_push(checked, deadline=deadline)

    def start_push(self, push: Push, *, deadline: float | None = None) -> PushResult:
        """Run a checked push after answering it (background mode); the answer is 202."""
        from ._push import PushResult

        if self._abort is None:
            self._abort = asyncio.Event()
        task = asyncio.create_task(self._background_run(push, deadline))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return PushResult("accepted", push.job_id, http_status=202, name=push.name)

    async def _background_run(self, push: Push, deadline: float | None) -> PushResult:
        try:
            return await self.run_push(push, deadline=deadline, abort=self._abort)
        except Exception:  # nobody awaits this task: say what happened
            log.exception("emit-push: the background run of job %s raised", push.job_id)
            raise

    async def run_push(
        self, push: Push, *, deadline: float | None = None, abort: asyncio.Event | None = None
    ) -> PushResult:
        """Claim and run the job of a checked push; ``deadline`` is ``time.monotonic()``."""
        from ._push import PushResult

        handler = self.handler_for(push.name) if push.name is not None else None
        if push.name is not None and handler is None:
            reason = f"no handler for {push.name!r} here"
            return PushResult("ignored", push.job_id, name=push.name, reason=reason)
        client = self.client()
        try:
            descriptor = await client._driver.run(_claim(push.job_id))
        except ConflictError:
            return PushResult("skipped", push.job_id, name=push.name, reason="already claimed")
        except NotFoundError:
            return PushResult("skipped", push.job_id, name=push.name, reason="no such job")
        except (APIConnectionError, ServerError, RateLimitError) as exc:
            message = f"emit.run could not be reached to claim the job: {exc}"
            return PushResult.refused(503, "service_unavailable", message, job_id=push.job_id)
        except EmitError as exc:
            message = f"emit.run refused the claim (check the worker's key): {exc}"
            return PushResult.refused(500, "claim_refused", message, job_id=push.job_id)
        return await self.run_claimed(descriptor, deadline=deadline, abort=abort)

    async def run_claimed(
        self,
        descriptor: JobDescriptor,
        *,
        remaining_time: float | None = None,
        deadline: float | None = None,
        abort: asyncio.Event | None = None,
    ) -> PushResult:
        """Run a job this worker has claimed (from a push or a poll) with its handler.

        The run's deadline is the earliest of ``deadline`` (``time.monotonic()``, e.g. the
        platform's limit as of the push's arrival), ``remaining_time`` from now,
        ``max_runtime`` from now, and the job's timeout when keepalives are off.
        """
        from ._execution import execute
        from ._handler_job import Job, RunState
        from ._push import PushResult

        handler = self.handler_for(descriptor.name)
        started = time.monotonic()
        options = handler.options if handler is not None else self.options
        limits = [remaining_time, options.max_runtime]
        if options.keepalive_interval is None:  # nothing re-arms the service's timer
            limits.append(descriptor.timeout_seconds)
        ends = [started + limit for limit in limits if limit is not None]
        if deadline is not None:
            ends.append(deadline)
        state = RunState(deadline=min(ends) if ends else None)
        driver = self.client()._driver
        job: Job[Any] = Job(driver, descriptor, logger=options.logger, state=state)
        if handler is None:
            return await self._no_handler(job)
        outcome = await execute(handler, job, self._middleware, abort)
        if outcome.exception is not None:
            raise outcome.exception
        return PushResult(
            outcome.status,
            job.id,
            name=job.name,
            attempt_number=job.attempt_number,
            error=outcome.error,
            reason=outcome.reason,
        )

    async def run_polling(
        self,
        *,
        types: str | Sequence[str] | None = None,
        count: int = 1,
        poll_interval: float = 1.0,
        max_backoff: float = 15.0,
        stop: asyncio.Event | threading.Event | None = None,
        grace_period: float = 30.0,
        handle_signals: bool = True,
        on_done: Callable[[PushResult], Any] | None = None,
    ) -> None:
        """Run the handlers as a polling worker until stopped (SIGTERM, SIGINT, ``stop``).

        ``types`` defaults to the names of the handlers (every job with a ``"*"``
        handler). ``count`` jobs run at once per round; idle polls back off with jitter up
        to ``max_backoff``. On stop, running jobs get ``grace_period`` seconds, then are
        stopped and failed back so they retry. ``on_done`` sees each job's result.

            asyncio.run(app.run_polling(count=4))
        """
        from ._polling import run_polling

        self.prepare()
        await run_polling(
            self, types=types, count=count, poll_interval=poll_interval,
            max_backoff=max_backoff, stop=stop, grace_period=grace_period,
            handle_signals=handle_signals, on_done=on_done,
        )  # fmt: skip

    async def _no_handler(self, job: Job[Any]) -> PushResult:
        """A push without a name claimed a job nobody here handles: fail it, visibly."""
        from ._push import PushResult

        error = f"no handler for job {job.name!r} at this endpoint"
        reason = "no handler"
        try:
            await job.ack()  # only a running job can be failed
            await job.fail(error)
        except EmitError as exc:
            reason = f"no handler; could not fail the job: {exc}"
        finally:
            await job.aclose()
        return PushResult("failed", job.id, name=job.name, error=error, reason=reason)

    # -- adapters -------------------------------------------------------------------

    def asgi(self, *, background: bool = False, grace_period: float = 30.0) -> Starlette:
        """A Starlette app: POST ``/`` takes pushes, GET ``/health`` answers; mount it anywhere.

        ``background=True`` answers 202 as soon as a push is checked and runs the job
        after the answer (long-lived servers only: serverless platforms freeze then).
        """
        from .adapters.asgi import asgi_app

        return asgi_app(self, background=background, grace_period=grace_period)


def _claim(job_id: str) -> Any:
    from ._endpoints import claim

    return claim(job_id)


def _is_client(client: object) -> bool:
    from ._client import AsyncEmitClient  # loaded already when one was made

    return isinstance(client, AsyncEmitClient)


_default: EmitPush | None = None


def default_app() -> EmitPush:
    """The app that the module-level ``on_job`` registers on (made on first use)."""
    global _default
    if _default is None:
        _default = EmitPush()
    return _default


def on_job(name: str, **options: Any) -> Callable[[F], F]:
    """``@on_job("name")`` on the default app, for the one-file case; see ``EmitPush.on_job``."""
    return default_app().on_job(name, **options)
