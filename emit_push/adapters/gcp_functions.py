"""The Google Cloud Functions adapter: a functions-framework HTTP function.

    gcf = http_function(app)            # functions-framework --target gcf

The function is sync (functions-framework serves Flask); it runs the push on one event
loop that lives in a background thread for the life of the instance, so the API client
and its connection pool are reused across requests. ``FUNCTION_TIMEOUT_SEC``, when the
platform sets it, bounds the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol, TypeVar

from .._framework.app import EmitPush, default_app

__all__ = ["HttpRequest", "http_function"]

T = TypeVar("T")


class Stream(Protocol):
    def read(self, size: int, /) -> bytes: ...


class HttpRequest(Protocol):
    """What is read from the (Flask) request: its headers and its body's stream."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def stream(self) -> Stream: ...


HttpFunction = Callable[[HttpRequest], tuple[bytes, int, dict[str, str]]]


def http_function(app: EmitPush | None = None) -> HttpFunction:
    """An HTTP function serving ``app`` (default: the app of the module-level ``on_job``).

    Served by functions-framework (``pip install 'emit-push[gcp]'``) or any Flask app:
    without Flask, a ``MissingExtraError`` says what to install. Missing settings do
    not stop it: it warns, and pushes are answered 500 until they are set.
    """
    from .._extras import requires

    with requires("gcp", "http_function()"):
        import flask  # noqa: F401  # what calls the function; imported already when it does

    app = app or default_app()
    app.runner.serving()
    loop = _LoopThread()  # started at the first request: the server may fork after import
    timeout = os.environ.get("FUNCTION_TIMEOUT_SEC")
    limit = float(timeout) if timeout and timeout.isdigit() else None

    def function(request: HttpRequest) -> tuple[bytes, int, dict[str, str]]:
        deadline = None if limit is None else time.monotonic() + limit
        # No more than it takes to refuse it, whether its length is declared or chunked.
        body = _read_at_most(request.stream, app.runner.max_push_bytes + 1)
        headers = dict(request.headers.items())
        # A traceparent is linked to the run: the loop's task copies this thread's context.
        with _trace_context(headers):
            result = loop.run(app.handle_push(body, headers, deadline=deadline))
        status, answer_headers, content = result.http()
        return content, status, dict(answer_headers)

    function.__name__ = "emit_push_http_function"
    return function


def _trace_context(headers: Mapping[str, str]) -> contextlib.AbstractContextManager[object]:
    if not any(name.lower() == "traceparent" for name in headers):
        return contextlib.nullcontext()
    from .._framework.tracing import incoming  # only then

    return incoming(headers)


def _read_at_most(stream: Stream, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit and (chunk := stream.read(min(65536, limit - size))):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class _LoopThread:
    """One event loop in a daemon thread; request threads hand it coroutines to run.

    Made on first use in each process: gunicorn (under functions-framework) imports the
    function before it forks its workers, and threads do not survive a fork.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="emit-push-loop", daemon=True
                )
                thread.start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._running()).result()
