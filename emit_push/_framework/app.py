"""``EmitPush``: your ``@on_job`` handlers, served from pushes (and polling) on emit.run.

The app is the registry users hold: handlers, middleware, job options, settings. What a
push endpoint does with them is its ``runner`` (``runner.Runner``): adapters translate
requests into it, and ``handle_push(body, headers)`` is the whole of it for any other
web framework.
"""

from __future__ import annotations

import contextlib
import copy
import os
import threading
import types
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Unpack

from .._exceptions import ConfigurationError
from .auth import MAX_PUSH_BYTES, PushAuth
from .handlers import UNSET, Handler, make_handler
from .options import POLL_DEFAULTS, check_names, resolve
from .runner import ANY_NAME, Runner, check_client

# Only what registering handlers and serving needs is imported here. The API client,
# the executor and the wire models (and with them httpx) come with the first push: a
# Lambda's cold start pays for its handlers, not for the SDK (tests/test_imports.py).
if TYPE_CHECKING:
    from starlette.applications import Starlette

    from .._sdk.client import AsyncClient
    from .._sdk.settings import ApiKey
    from .execution import Middleware
    from .handlers import Register
    from .options import JobOptions, PollOptions
    from .polling import PollingLoop
    from .push import PushResult

__all__ = ["ANY_NAME", "EmitPush", "default_app", "on_job"]

F = TypeVar("F", bound=Callable[..., Any])


class EmitPush:
    """Your ``@on_job`` functions, served from push (and polling) on emit.run.

    Settings default from the environment: ``EMIT_SPACE_ID``, ``EMIT_API_KEY``,
    ``EMIT_BASE_URL`` and ``EMIT_PUSH_SECRET`` (comma-separated for rotation). A malformed
    one raises ``ConfigurationError`` when an adapter is built; a missing space or key
    is only warned about then, and named when first needed (a push is answered 500; a
    poll, a sweep or ``client()`` raises), so an app module imports without them. Job options
    given here (``JobOptions``: ``auto_ack``, ``auto_complete``, ``keepalive_interval``,
    ``max_runtime``...) are the defaults of every handler; ``on_job`` can override each.
    ``sweep_every`` (seconds) makes the app's lifespan run a sweep that often (see
    ``sweep``): for long-running servers whose jobs come only by push. With
    ``opentelemetry-api`` installed (``emit-push[otel]``) each run is an OpenTelemetry
    span; ``tracing=False`` makes none (and never imports it).

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
        client: AsyncClient | None = None,
        max_push_bytes: int = MAX_PUSH_BYTES,
        sweep_every: float | None = None,
        tracing: bool = True,
        **options: Unpack[JobOptions],
    ) -> None:
        if sweep_every is not None and not (
            isinstance(sweep_every, int | float)
            and not isinstance(sweep_every, bool)
            and 0 < sweep_every < float("inf")
        ):
            raise ConfigurationError("sweep_every must be a positive number of seconds, or None")
        self.sweep_every = sweep_every
        """Seconds between two sweeps in the app's lifespan (``lifespan()``); None: none."""
        self._polling: set[PollingLoop] = set()  # the app's loops running now (for aclose)
        if push_secret is UNSET:
            push_secret = os.environ.get("EMIT_PUSH_SECRET") or None
        if client is not None:
            check_client(client)
        self.runner = Runner(
            options=resolve({}, options, where="EmitPush"),
            auth=PushAuth.of(push_secret, push_secret_header),
            max_push_bytes=max_push_bytes,
            client_settings={
                "space_id": space_id,
                "api_key": api_key,
                "base_url": base_url,
                "api_key_header": api_key_header,
            },
            client=client,
        )
        """What serves pushes with these handlers: adapters and workers drive it."""
        if not isinstance(tracing, bool):
            raise ConfigurationError("tracing must be True or False")
        if not tracing:
            from .tracing import disable

            disable(self.runner)

    def __repr__(self) -> str:
        return f"EmitPush(handlers={sorted(self.runner.handlers)!r})"

    # -- registration ---------------------------------------------------------------

    def on_job(self, name: str, *, payload: Any = UNSET, **options: Unpack[JobOptions]) -> Register:
        """Register the decorated ``def`` or ``async def`` as the handler of job ``name``.

        The handler takes the job alone: ``async def f(job: Job[Model])`` or ``def
        f(job: SyncJob[Model])``, and returns what completes the job (a ``JobResult``:
        JSON-like values, pydantic models, dataclasses). mypy rejects other handlers, and
        registration refuses them (``ConfigurationError``). The payload type comes from
        the annotation or ``payload=``; a bare ``Job`` is ``Job[Any]``: the payload as
        parsed JSON, unvalidated. The options override the app's. ``"*"`` (``ANY_NAME``)
        takes every job no other handler names.
        """
        resolved = resolve(self.runner.options, options, where="on_job")

        def register(func: F) -> F:
            if name in self.runner.handlers:
                raise ConfigurationError(f"job {name!r} already has a handler")
            self.runner.handlers[name] = make_handler(name, func, resolved, payload)
            return func

        return register

    def middleware(self, func: Middleware) -> Middleware:
        """Register ``async def middleware(job, call_next)`` around every run.

        Middleware receives the async ``Job`` (also for ``def`` handlers) and returns what
        ``await call_next()`` returned: the place for tracing, metrics, context.
        """
        self.runner.middleware.append(func)
        return func

    @property
    def handlers(self) -> Mapping[str, Handler]:
        """The registered handlers by job name."""
        return dict(self.runner.handlers)

    @property
    def options(self) -> Mapping[str, Any]:
        """The app's job options (read-only): the defaults of every handler."""
        return types.MappingProxyType(self.runner.options)

    @property
    def push_auth(self) -> PushAuth:
        """The push secrets this app accepts, and the header they come in."""
        return self.runner.auth

    # -- the service ----------------------------------------------------------------

    def with_client(self, client: AsyncClient) -> EmitPush:
        """A copy of this app whose API calls go through ``client`` (tests, other spaces).

        The copy starts with this app's handlers, middleware, options and push secrets;
        registering on either afterwards does not change the other.
        """
        check_client(client)
        bound = copy.copy(self)  # a subclass stays one, with its own attributes
        bound.runner = self.runner.with_client(client)
        bound._polling = set()
        return bound

    def client(self) -> AsyncClient:
        """The API client for the running event loop (one connection pool per loop)."""
        return self.runner.client()

    async def aclose(self, grace_period: float = 30.0) -> None:
        """Stop: this app's polling loops (on this event loop) and background runs get
        ``grace_period`` seconds, then their jobs are stopped and failed back (so they
        retry); then the clients this app made are closed.

        Call it from your app's shutdown (e.g. FastAPI's lifespan) when you mount
        ``app.asgi(background=True)``: mounted apps get no lifespan events of their own.
        """
        import asyncio
        import time

        started = time.monotonic()
        here = asyncio.get_running_loop()
        loops = [loop for loop in self._polling if loop.event_loop is here]
        if loops:  # a cancelled loop included: it fails its jobs back before the clients close
            await asyncio.gather(*(loop.stop(grace_period) for loop in loops))
        await self.runner.aclose(max(grace_period - (time.monotonic() - started), 0))

    # -- serving --------------------------------------------------------------------

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

            result = await app.handle_push(await request.body(), request.headers)
            status, headers, body = result.http()
        """
        import time

        from .push import PushResult

        if remaining_time is not None:
            ends = time.monotonic() + remaining_time
            deadline = ends if deadline is None else min(deadline, ends)
        checked = self.runner.check(body, headers)
        if isinstance(checked, PushResult):
            return checked
        return await self.runner.run_push(checked, deadline=deadline)

    async def sweep(
        self,
        *,
        max_jobs: int = 10,
        remaining_time: float | None = None,
        deadline: float | None = None,
    ) -> list[PushResult]:
        """Run pending jobs of this app's handlers whose push never came: a lost push
        costs a delay, not the job.

        One pass: claims (through ``poll``) and runs one job at a time, exactly as a push
        would, until none is pending, ``max_jobs`` have run, or less than 5 s are left of
        ``remaining_time`` (or before ``deadline``, a ``time.monotonic()`` value), which
        also bounds each run. Claims decide: a push arriving for the same job meanwhile is
        answered ``skipped``. A failed poll ends the pass (it goes to ``on_error`` with no
        job; ``stop_on_error`` raises it). Returns each run's result, in order.

            results = await app.sweep()     # on a schedule; on Lambda, see template.yaml
        """
        import time

        from .sweep import sweep

        if remaining_time is not None:
            ends = time.monotonic() + remaining_time
            deadline = ends if deadline is None else min(deadline, ends)
        self.runner.require_settings()
        return await sweep(self.runner, max_jobs=max_jobs, deadline=deadline)

    @contextlib.asynccontextmanager
    async def lifespan(self, grace_period: float = 30.0) -> AsyncIterator[None]:
        """The app's life in a server: sweeps every ``sweep_every`` seconds (when set)
        while inside; on exit, the sweep's job and background runs get ``grace_period``
        seconds, then are stopped and failed back, and the clients are closed (``aclose``).

        ``app.asgi()`` runs it in its own lifespan; mounted in another app (which gets the
        lifespan events), enter it from that app's:

            api = FastAPI(lifespan=lambda _: app.lifespan())
            api.mount("/emit", app.asgi())
        """
        import time

        sweeper = None
        if self.sweep_every is not None:
            from .sweep import Sweeper

            self.runner.prepare()
            sweeper = Sweeper(self.runner, self.sweep_every)
            sweeper.start()
        try:
            yield
        finally:
            started = time.monotonic()
            if sweeper is not None:
                await sweeper.stop(grace_period)  # before the clients close
            await self.aclose(max(grace_period - (time.monotonic() - started), 0))

    async def run_polling(self, **options: Unpack[PollOptions]) -> None:
        """Run the handlers as a polling worker until stopped (SIGTERM, SIGINT, ``stop``).

        ``types`` defaults to the names of the handlers (every job with a ``"*"``
        handler). ``count`` jobs run at once per round; idle polls back off with jitter up
        to ``max_backoff``. On stop, running jobs get ``grace_period`` seconds, then are
        stopped and failed back so they retry. ``on_done`` sees each job's result.

        A failed poll goes to the app's ``on_error`` with ``None`` for the job, and the
        loop backs off and polls again; with the app's ``stop_on_error`` it ends, raising
        the error (a refused key always does). Cancelling the task that runs the loop
        stops its functions at once, and the cancellation returns once each of its jobs
        has been failed back (within the handlers' ``deadline_margin`` + 10 s);
        ``aclose()`` stops the app's loops as ``stop`` does, and waits for them.

            asyncio.run(app.run_polling(count=4))
        """
        from .polling import run_polling

        check_names(options, POLL_DEFAULTS, "run_polling")  # a typo first, then settings
        self.runner.require_settings()
        await run_polling(self.runner, running=self._polling, **options)

    def asgi(self, *, background: bool = False, grace_period: float = 30.0) -> Starlette:
        """A Starlette app: POST ``/`` takes pushes, GET ``/health`` answers; mount it anywhere.

        ``background=True`` answers 202 as soon as a push is checked and runs the job
        after the answer (long-lived servers only: serverless platforms freeze then).
        Needs Starlette (``pip install 'emit-push[server]'``; FastAPI brings it too):
        without it, a ``MissingExtraError`` says so. Missing settings do not stop it: the
        adapter warns, and pushes are answered 500 until ``EMIT_SPACE_ID`` and
        ``EMIT_API_KEY`` are set.
        """
        from .._extras import requires

        with requires("server", "app.asgi()"):
            from ..adapters.asgi import asgi_app

        return asgi_app(self, background=background, grace_period=grace_period)


_default: EmitPush | None = None
_default_lock = threading.Lock()


def default_app() -> EmitPush:
    """The app that the module-level ``on_job`` registers on (made on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = EmitPush()
        return _default


def on_job(name: str, **options: Any) -> Register:
    """``@on_job("name")`` on the default app, for the one-file case; see ``EmitPush.on_job``."""
    return default_app().on_job(name, **options)
