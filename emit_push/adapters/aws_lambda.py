"""The AWS Lambda adapter: Function URL and API Gateway (HTTP v2, REST v1) events.

    handler = lambda_handler(app)       # template.yaml: Handler: app.handler

Mangum translates the event into an ASGI request for ``app.asgi()`` (lifespan off) and
runs it on the thread's current event loop. ``lambda_handler`` makes one loop and sets
it as the current loop of the thread that calls it (unless that thread runs one: then at
the first invocation), and of the invoking thread at each invocation: Mangum finds it,
from any thread, with no deprecated implicit loop creation (which Python 3.14 removes).
``EmitPush`` keeps one API client (one connection pool) per loop, so warm invocations
reuse both. The context's remaining time sets the run's deadline.

A scheduled event (EventBridge: ``"source": "aws.events"``, ``"detail-type": "Scheduled
Event"``; ``template.yaml`` sends one a minute) is no request: it runs ``app.sweep()``
within the invocation's remaining time, so jobs whose push was lost still run, and
answers what ran. Only such an event loads the sweep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from mangum import Mangum

from .._framework.app import EmitPush, default_app
from .asgi import LambdaContext, asgi_app, remaining_time

__all__ = ["LambdaContext", "is_scheduled", "lambda_handler"]

LambdaHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def lambda_handler(app: EmitPush | None = None) -> LambdaHandler:
    """A Lambda handler serving ``app`` (default: the app of the module-level ``on_job``).

    Settings are checked here, at import time of your module: a missing ``EMIT_SPACE_ID``
    or ``EMIT_API_KEY`` fails the cold start with a clear ``ConfigurationError``.
    """
    app = app or default_app()
    app.runner.prepare()
    loop: asyncio.AbstractEventLoop | None = None
    try:
        asyncio.get_running_loop()  # made in async code (a test): Mangum takes that loop
    except RuntimeError:  # imported by the runtime: set ours before Mangum makes its own
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
    adapter = Mangum(asgi_app(app, any_path=True), lifespan="off")

    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        nonlocal loop
        if loop is None or loop.is_closed():
            loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # where Mangum looks for it
        if is_scheduled(event):
            results = loop.run_until_complete(app.sweep(remaining_time=remaining_time(context)))
            return {"swept": [result.body() for result in results]}
        response: dict[str, Any] = adapter(event, context)  # type: ignore[arg-type]
        return response

    return handler


def is_scheduled(event: object) -> bool:
    """Whether ``event`` is an EventBridge schedule's (a sweep), not a request."""
    return (
        isinstance(event, dict)
        and event.get("source") == "aws.events"
        and event.get("detail-type") == "Scheduled Event"
    )
