"""The machinery behind an ``EmitPush``: check a push, claim its job, run it, answer.

``EmitPush`` is what users hold (handlers, middleware, options); its ``runner`` is what
the adapters, the polling worker and ``emit_push.testing`` drive, as Starlette's router
is behind its app. One push goes through it forward only:

    check (push: auth + body)  →  handler_for  →  claim  →  run_claimed
        → execution.execute (the function; decisions say what it came to)  →  PushResult

The API client is made per event loop, on first use: a Lambda's cold start pays for
registering handlers, not for the SDK (``tests/test_imports.py``).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigurationError, EmitError, NotFoundError

if TYPE_CHECKING:
    from .._sdk.client import AsyncClient
    from .._wire.models import JobDescriptor
    from .auth import PushAuth
    from .execution import Middleware
    from .handlers import Handler
    from .job import Job, RunState
    from .notices import Notices
    from .options import JobOptions
    from .push import Push, PushResult

__all__ = ["ANY_NAME", "Runner"]

log = logging.getLogger("emit_push")

ANY_NAME = "*"
"""Register a handler under this name to take jobs that no other handler names."""


class Runner:
    """Checks, claims and runs pushed (or polled) jobs with an app's handlers."""

    def __init__(
        self,
        *,
        options: JobOptions,
        auth: PushAuth,
        max_push_bytes: int,
        client_settings: Mapping[str, Any],
        client: AsyncClient | None = None,
    ) -> None:
        self.options = options
        """The app's job options: the defaults of every handler."""
        self.auth = auth
        self.max_push_bytes = max_push_bytes
        """Pushes larger than this are refused unread (adapters read one byte more)."""
        self.handlers: dict[str, Handler] = {}
        self.middleware: list[Middleware] = []
        self.warn_without_secret = True
        """Whether ``serving`` warns, once, that no push secret is set."""
        self._client_settings = dict(client_settings)
        self._client = client
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncClient]
        self._clients = weakref.WeakKeyDictionary()
        self.space_id = client.space_id if client is not None else client_settings["space_id"]
        self._prepared = False
        self.missing = ""
        """What settings are missing, as the error says it (empty: none, or not checked yet)."""
        self._background: set[asyncio.Task[PushResult]] = set()
        self._abort: asyncio.Event | None = None
        self.notices: Notices | None = None
        """Warnings about refused pushes, rate-limited (made at the first)."""

    def with_client(self, client: AsyncClient) -> Runner:
        """A copy whose calls go through ``client``; handlers and middleware are copied."""
        bound = copy.copy(self)
        bound._client = client
        bound._clients = weakref.WeakKeyDictionary()
        bound.space_id = client.space_id
        bound.handlers = dict(self.handlers)
        bound.middleware = list(self.middleware)
        bound._prepared = False
        bound.missing = ""
        bound._background = set()
        bound._abort = None
        return bound

    @property
    def given_client(self) -> AsyncClient | None:
        """The client the app was given (``EmitPush(client=...)``), if any."""
        return self._client

    # -- settings -------------------------------------------------------------------

    def prepare(self) -> None:
        """Check the settings now (adapters call this when they are built).

        A malformed setting raises ``ConfigurationError``. A missing space or key does
        not: it is warned about, once, and named by the first push (answered 500), poll
        or API call (``require_settings``); until then the environment is read again at
        each use, so it may be set after the app is made (a test's fixture, say).
        """
        if self._prepared:
            return
        if self._client is not None:
            self._prepared = True
            return
        from .._sdk.settings import check_given, missing

        space_id = check_given(client="EmitPush", allow_async_key=True, **self._client_settings)
        settings = self._client_settings
        was, self.missing = self.missing, missing("EmitPush", space_id, settings["api_key"])
        if not self.missing:
            self.space_id = space_id
            self._prepared = True
        elif not was:
            log.warning(
                "emit-push: %s: until then each push is answered 500 (not_configured),"
                " and each poll or API call raises ConfigurationError",
                self.missing,
            )

    def setting(self, name: str) -> Any:
        """A client setting as given to the app (``api_key``, ``space_id``...), or None."""
        return self._client_settings.get(name)

    def give_settings(self, **settings: Any) -> None:
        """Settings that arrive after the app was made (a secret read from a store at the
        first invocation): they count from the next client made, and are checked again."""
        if self._clients:
            raise ConfigurationError("settings must be given before the first API call")
        self._client_settings.update(settings)
        self._prepared = False

    def require_settings(self) -> None:
        """``ConfigurationError`` naming what is missing (a poll, an API call, a sweep)."""
        self.prepare()
        if self.missing:
            raise ConfigurationError(self.missing)

    def serving(self) -> None:
        """A push endpoint starts: settings checked (a warning names any missing); one
        warning when no push secret is set (then every push is accepted)."""
        self.prepare()
        if not self.auth.enabled and self.warn_without_secret:
            self.warn_without_secret = False
            log.warning(
                "emit-push: no push secret (EMIT_PUSH_SECRET): every push is accepted. Set one"
                " and add it as a custom header in the space's push settings."
            )

    def client(self) -> AsyncClient:
        """The API client for the running event loop (one connection pool per loop)."""
        if self._client is not None:
            return self._client
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            self.require_settings()
            from .._sdk.client import AsyncClient

            client = self._clients[loop] = AsyncClient(**self._client_settings)
        return client

    @property
    def clients(self) -> dict[asyncio.AbstractEventLoop, AsyncClient]:
        """The clients made so far, by the event loop each serves."""
        return dict(self._clients)

    def handler_for(self, name: str) -> Handler | None:
        return self.handlers.get(name) or self.handlers.get(ANY_NAME)

    # -- a push ---------------------------------------------------------------------

    def check(self, body: bytes, headers: Mapping[str, str]) -> Push | PushResult:
        """Authenticate and validate a push, without I/O (see ``push.check_push``); a
        push is refused (500 ``not_configured``) while settings are missing."""
        from .push import PushResult, check_push

        self.serving()
        lowered = {key.lower(): value for key, value in headers.items()}
        checked = check_push(
            body, lowered, auth=self.auth, space_id=self.space_id, max_bytes=self.max_push_bytes
        )
        if isinstance(checked, tuple) and self.missing:  # authentic, but no claim can be made
            checked = PushResult.refused(500, "not_configured", self.missing, job_id=checked.job_id)
        if not isinstance(checked, tuple):  # refused: say so in the process's log too
            self._refused(checked)
        return checked

    def _refused(self, result: PushResult) -> None:
        from .notices import Notices

        if self.notices is None:
            self.notices = Notices()
        if result.http_status == 401:
            self.notices.warn(
                "secret",
                "emit-push: push refused (401): %s. Fix: set the same secret as EMIT_PUSH_SECRET"
                " in the space's push settings, as a custom header named %s",
                result.error, self.auth.header,
            )  # fmt: skip
        else:
            self.notices.warn(
                f"push-{result.http_status}",
                "emit-push: push refused (%d %s): %s",
                result.http_status, result.code, result.error,
            )  # fmt: skip

    def start(self, push: Push, *, deadline: float | None = None) -> PushResult:
        """Run a checked push after answering it (background mode); the answer is 202."""
        from .push import PushResult

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
        from .._wire.endpoints import claim
        from .push import PushResult

        if push.name is not None and self.handler_for(push.name) is None:
            reason = f"no handler for {push.name!r} here"
            return PushResult("ignored", push.job_id, name=push.name, reason=reason)
        client = self.client()
        call, started = claim(push.job_id), time.time_ns()  # its span is made with the run's
        try:
            descriptor = await client.send(call)
        except EmitError as exc:
            if exc.retryable and await _claimed_already(client, push.job_id, exc):
                reason = "already claimed (the claim's answer was lost; the job is not pending)"
                return PushResult("skipped", push.job_id, name=push.name, reason=reason)
            no_api = isinstance(exc, NotFoundError) and await _no_api_at(client, exc)
            result = self._claim_failed(push, exc, client.base_url if no_api else None)
            if result.status is None:  # refused, not a duplicate: a span says so
                from .tracing import claim_refused

                claim_refused(self, call, client, started, exc)
            return result
        from .tracing import claimed  # not before: a duplicate push needs none of it

        with claimed(self, push.job_id, call, client, started):
            return await self.run_claimed(descriptor, deadline=deadline, abort=abort)

    def _claim_failed(self, push: Push, error: EmitError, no_api_at: str | None) -> PushResult:
        """The answer to a push whose claim failed; a refusal is also a warning, with the
        fix (rate-limited: a flood of pushes must not flood the log)."""
        from .notices import Notices
        from .push import claim_answer

        result = claim_answer(push.job_id, push.name, error, no_api_at=no_api_at)
        if result.status is None:
            fix = {
                "service_unavailable": "the push is answered 503, so emit.run sends it again;"
                " check EMIT_BASE_URL and this host's network",
                "claim_refused": "use a key with the jobs:worker scope (EMIT_API_KEY)",
            }.get(result.code or "", "")
            if self.notices is None:
                self.notices = Notices()
            self.notices.warn(
                result.code or "claim",
                "emit-push: cannot claim job %s: %s%s",
                push.job_id, result.error, f". Fix: {fix}" if fix else "",
            )  # fmt: skip
        return result

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
        ``max_runtime`` from now, and, when keepalives are off, the job's timeout from
        the last progress, checkpoint or keepalive the service accepted.
        """
        from . import tracing
        from .decisions import idle_window, run_limit
        from .execution import execute
        from .job import Job, RunSender, RunState
        from .push import PushResult

        handler = self.handler_for(descriptor.name)
        options = handler.options if handler is not None else self.options
        limit = run_limit(
            time.monotonic(),
            deadline=deadline,
            remaining_time=remaining_time,
            max_runtime=options["max_runtime"],
        )
        timeout = descriptor.timeout_seconds
        state = RunState(limit, idle_window(options["keepalive_interval"], timeout))
        sender = RunSender(self.client(), state, timeout)
        job: Job[Any] = Job(sender, descriptor, logger=options["logger"], state=state)
        with tracing.run_span(self, descriptor) as span:  # current while the run lasts
            if handler is None:
                result = await _no_handler(job, state)
                span.outcome("failed", result.error, result.reason)
                return result
            layers = span.middleware(self.middleware)  # the first records an exception
            outcome = await execute(handler, job, state, sender.ungated(), layers, abort)
            span.outcome(outcome.status, outcome.error, outcome.reason)
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

    async def aclose(self, grace_period: float = 30.0) -> None:
        """Background runs get ``grace_period`` seconds, then are stopped and failed back;
        then the clients made here are closed."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=grace_period)
            if self._abort is not None:
                self._abort.set()
            if self._background:
                await asyncio.wait(set(self._background), timeout=10)
        clients, self._clients = list(self._clients.values()), weakref.WeakKeyDictionary()
        for client in clients:
            await client.aclose()


async def _no_handler(job: Job[Any], state: RunState) -> PushResult:
    """A push without a name claimed a job nobody here handles: fail it, visibly."""
    from .execution import end
    from .push import PushResult

    error = f"no handler for job {job.name!r} at this endpoint"
    reason = "no handler"
    try:
        await job.ack()  # only a running job can be failed
        await job.fail(error)
    except EmitError as exc:
        reason = f"no handler; could not fail the job: {exc}"
    finally:
        await job.aclose()
        end(state, job.id)
    return PushResult("failed", job.id, name=job.name, error=error, reason=reason)


async def _no_api_at(client: AsyncClient, error: EmitError) -> bool:
    """After a claim answered 404: whether the base URL is wrong rather than the job
    unknown. Told by a call that needs no job: listing the space's jobs answers 404 too."""
    from .._wire.endpoints import list_jobs

    if error.code == "job_not_found":  # the service's word for an unknown job
        return False
    try:
        await client.send(list_jobs(client.space_id, None, 1, None))
    except NotFoundError:
        return True
    except EmitError:
        return False  # cannot tell: the job, then
    return False


async def _claimed_already(client: AsyncClient, job_id: str, error: EmitError) -> bool:
    """After a claim of unknown fate: whether the job has left ``pending`` (then the push
    is decided, and answered ``skipped``; else 503, and the service pushes again)."""
    from .._wire.endpoints import get
    from .._wire.retry import unprocessed

    if unprocessed(error):
        return False
    try:
        return (await client.send(get(job_id))).status != "pending"
    except EmitError:
        return False  # cannot tell: undecided


def check_client(client: object) -> None:
    """``ConfigurationError`` unless ``client`` is an ``AsyncEmitClient`` (or the SDK's
    ``AsyncClient`` it is made on)."""
    from .._sdk.client import AsyncClient  # loaded already when one was made

    if not isinstance(client, AsyncClient):
        raise ConfigurationError("client must be an AsyncEmitClient")
