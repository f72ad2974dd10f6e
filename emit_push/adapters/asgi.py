"""The ASGI adapter: a Starlette app that takes pushes at its root.

    api = FastAPI()
    api.mount("/emit", app.asgi())     # push URL: https://your.host/emit/  (mind the slash)

Under AWS Lambda (through Mangum) the Lambda context's remaining time sets the deadline.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from .._extras import requires

with requires("server", "emit_push.adapters.asgi"):
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

if TYPE_CHECKING:
    from collections.abc import Mapping
    from contextlib import AbstractAsyncContextManager

    from .._framework.push import PushResult
    from .._framework.runner import Runner

__all__ = ["LambdaContext", "asgi_app", "remaining_time"]


class PushApp(Protocol):
    """What is used of an ``EmitPush``. Named here rather than imported: ``EmitPush.asgi()``
    imports this module (the one import from the framework up to an adapter, for the
    convenience), and importing ``EmitPush`` back, even for types, would close a circle."""

    runner: Runner

    async def handle_push(
        self, body: bytes, headers: Mapping[str, str], *, deadline: float | None = None
    ) -> PushResult: ...

    def lifespan(self, grace_period: float = 30.0) -> AbstractAsyncContextManager[None]: ...


class LambdaContext(Protocol):
    """The one thing read from a Lambda context."""

    def get_remaining_time_in_millis(self) -> int: ...


def remaining_time(context: LambdaContext | None) -> float | None:
    """Seconds the platform still gives this invocation, when it says."""
    if context is None:
        return None
    return context.get_remaining_time_in_millis() / 1000


def asgi_app(
    app: PushApp,
    *,
    background: bool = False,
    any_path: bool = False,
    grace_period: float = 30.0,
) -> Starlette:
    """``app`` as a Starlette app: POST ``/`` handles a push, GET ``/health`` answers.

    ``background=True`` answers 202 once the push is checked and runs the job after the
    answer: for long-lived servers only (a serverless platform freezes after answering).
    Its lifespan is the app's (``EmitPush.lifespan``): sweeps every ``sweep_every``
    seconds when set; at shutdown, background runs get ``grace_period`` seconds, then are
    stopped and failed back (mounted in another app, enter ``app.lifespan()`` from that
    app's lifespan, or call ``await app.aclose()`` from its shutdown, instead).
    ``any_path=True`` takes pushes POSTed to any path (a function is its own endpoint,
    whatever route or stage API Gateway puts in front of it).
    """
    app.runner.serving()

    async def push(request: Request) -> Response:
        from .._framework.push import Push  # with the first push, not at a cold start

        # The platform's time counts from the push's arrival.
        remaining = remaining_time(request.scope.get("aws.context"))
        deadline = None if remaining is None else time.monotonic() + remaining
        body = await _body(request, app)
        with _trace_context(request.headers):  # a push's traceparent: linked to its run
            if not background:
                return _answer(await app.handle_push(body, request.headers, deadline=deadline))
            checked = app.runner.check(body, request.headers)
            if not isinstance(checked, Push):
                return _answer(checked)
            return _answer(app.runner.start(checked, deadline=deadline))

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with app.lifespan(grace_period):  # sweeps, if asked; then aclose
            yield

    push_path = "/{path:path}" if any_path else "/"
    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route(push_path, push, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


async def _body(request: Request, app: PushApp) -> bytes:
    """The body, read no further than one byte past the push size limit."""
    limit = app.runner.max_push_bytes
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)


def _trace_context(headers: Mapping[str, str]) -> contextlib.AbstractContextManager[object]:
    if "traceparent" not in headers:  # case-insensitive: Starlette's headers
        return contextlib.nullcontext()
    from .._framework.tracing import incoming  # only then

    return incoming(headers)


def _answer(result: PushResult) -> Response:
    status, headers, content = result.http()
    return Response(content, status_code=status, headers=dict(headers))
