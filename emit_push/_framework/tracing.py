"""OpenTelemetry spans for the runs of jobs and the API calls they make.

Each run (pushed, polled or swept: all go through ``Runner.run_claimed``) is a CONSUMER
span after the messaging semantic conventions, current while the function runs (in a
``def`` function's thread too: it gets a copy of the context), so that the function's own
spans nest under it. The claim and every API call of the run are CLIENT children, named
as HTTP client spans are::

    process resize                CONSUMER  messaging.system="emit.run", messaging.message.id,
    ├── POST /jobs/{id}/claim     CLIENT    messaging.destination.name="resize",
    ├── POST /jobs/{id}/ack       CLIENT    emit.job.attempt, emit.job.outcome="completed"...
    └── POST /jobs/{id}/complete  CLIENT    http.request.method, url.template, url.full...

A push's W3C ``traceparent`` is linked to its run, not made its parent (the conventions'
advice for consumers). A claim refused with an error is a CLIENT span alone; a duplicate
push (claim answered 404 or 409) makes none. Nothing secret is recorded: no key, no push
secret, no payload, no result.

Cold start: ``opentelemetry`` is imported at the first run, not before, and only if it can
be (``emit-push[otel]``); the answer is kept. Without it, or for an app made with
``tracing=False``, every helper hands back one shared object that does nothing.
"""

from __future__ import annotations

import contextvars
import importlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._exceptions import JobKilledError
from . import spans

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from .._wire.calls import Call
    from .._wire.models import JobDescriptor
    from .spans import Client


__all__ = [
    "NOOP",
    "call_span",
    "claim_refused",
    "claimed",
    "disable",
    "incoming",
    "run_span",
    "use_provider",
]

log = logging.getLogger("emit_push")

SYSTEM = "emit.run"
"""``messaging.system``."""

_OFF = "_emit_tracing_off"
"""Set on a ``Runner`` whose app was made with ``tracing=False`` (see :func:`disable`)."""

_Layer = Callable[[Any, Callable[[], Awaitable[Any]]], Awaitable[Any]]
"""A middleware layer (``execution.Middleware``, named here without importing it)."""

_importable: bool | None = None
"""Whether ``opentelemetry`` can be imported; None until the first run asks."""
_tracer: Tracer | None = None
_provider: TracerProvider | None = None
"""A provider for emit-push's spans other than the global one (tests)."""


class _Noop:
    """What every helper hands back when nothing is traced: does nothing, costs nothing."""

    __slots__ = ()

    def __enter__(self) -> _Noop:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def outcome(self, status: str, error: str | None = None, reason: str | None = None) -> None:
        return None

    def exception(self, exc: BaseException) -> None:
        return None

    def middleware(self, layers: Sequence[_Layer]) -> Sequence[_Layer]:
        return layers


NOOP = _Noop()


class _Claim:
    """A successful claim, waiting for its run's span (claims precede runs)."""

    __slots__ = ("call", "carrier", "client", "ended", "job_id", "started")

    def __init__(self, job_id: str, call: Call[Any], client: Client, started: int) -> None:
        self.job_id = job_id
        self.call = call
        self.client = client
        self.started = started
        self.ended = time.time_ns()
        self.carrier = _incoming.get()  # the push's trace context, if any


_incoming: contextvars.ContextVar[Mapping[str, str] | None]
_incoming = contextvars.ContextVar("emit_push_push_trace_context", default=None)
_claimed: contextvars.ContextVar[_Claim | None]
_claimed = contextvars.ContextVar("emit_push_claim", default=None)
_current: contextvars.ContextVar[_Run | None]
_current = contextvars.ContextVar("emit_push_run_span", default=None)


class _Bound:
    """Sets a context variable for the length of a ``with`` block."""

    __slots__ = ("_token", "_value", "_var")

    def __init__(self, var: contextvars.ContextVar[Any], value: object) -> None:
        self._var = var
        self._value = value

    def __enter__(self) -> None:
        self._token = self._var.set(self._value)

    def __exit__(self, *exc_info: object) -> None:
        self._var.reset(self._token)


# -- switches ---------------------------------------------------------------------------


def disable(runner: object) -> None:
    """Trace nothing of ``runner``'s runs (``EmitPush(tracing=False)``); kept by its copies."""
    setattr(runner, _OFF, True)  # Runner has no field of its own for it (yet)


def use_provider(provider: TracerProvider | None) -> None:
    """Make emit-push's spans with ``provider`` (None: the global one). For tests: the
    global provider can be set only once a process."""
    global _provider, _tracer
    _provider, _tracer = provider, None


def _on(runner: object) -> bool:
    if getattr(runner, _OFF, False):
        return False
    return _importable if _importable is not None else _import()


def _import() -> bool:
    """Import ``opentelemetry.trace`` if it can be, once: a failed import is not cached by
    Python, and would search the path again at every run."""
    global _importable
    try:
        importlib.import_module("opentelemetry.trace")
    except ImportError:
        _importable = False
    except Exception:  # a broken install must not break the runs
        log.warning("emit-push: opentelemetry failed to import; runs are not traced", exc_info=True)
        _importable = False
    else:
        _importable = True
    return _importable


def _get_tracer() -> Tracer:
    global _tracer
    if _tracer is None:
        from opentelemetry import trace

        from .._version import __version__

        _tracer = trace.get_tracer("emit_push", __version__, tracer_provider=_provider)
    return _tracer


# -- a push's trace context, and its claim ----------------------------------------------


def incoming(headers: Mapping[str, str]) -> _Noop | _Bound:
    """``with incoming(headers):`` around handling a push: its ``traceparent`` (and
    ``tracestate``), if any, is linked to the run of its job. Adapters call it."""
    carrier: dict[str, str] | None = None
    for key, value in headers.items():
        name = key.lower()
        if name == "traceparent" or name == "tracestate":
            carrier = carrier or {}
            carrier[name] = value
    if carrier is None or "traceparent" not in carrier:
        return NOOP
    return _Bound(_incoming, carrier)


def claimed(
    runner: object, job_id: str, call: Call[Any], client: Client, started: int
) -> _Noop | _Bound:
    """``with claimed(...):`` around running the job that ``call`` just claimed (sent at
    ``started``, ``time.time_ns()``): its run's span starts then, with the claim's."""
    if _importable is False or getattr(runner, _OFF, False):
        return NOOP
    return _Bound(_claimed, _Claim(job_id, call, client, started))


def claim_refused(
    runner: object, call: Call[Any], client: Client, started: int, error: BaseException
) -> None:
    """A claim failed with ``error`` and no run follows: its span alone, with the error."""
    if not _on(runner):
        return
    carrier = _incoming.get()
    links = spans.links(carrier) if carrier else None
    span = spans.client_span(_get_tracer(), call, client, links=links, start=started)
    spans.failed_call(span, error)
    span.end()


# -- the run ----------------------------------------------------------------------------


def run_span(runner: object, descriptor: JobDescriptor) -> _Noop | _Run:
    """``with run_span(runner, descriptor) as span:`` around a run; ``span.outcome(...)``
    says how it ended, ``span.middleware(layers)`` is the middleware to run it with (it
    records the function's exception)."""
    if not _on(runner):
        return NOOP
    return _Run(descriptor)


class _Run:
    """The span of one run, current while it lasts."""

    __slots__ = ("_descriptor", "_tokens", "context", "raised", "settled", "span")

    span: Span
    context: Context

    def __init__(self, descriptor: JobDescriptor) -> None:
        self._descriptor = descriptor
        self.raised: BaseException | None = None
        self.settled = False

    def __enter__(self) -> _Run:
        from opentelemetry import context, trace

        job = self._descriptor
        claim = _claimed.get()
        if claim is not None and claim.job_id != job.id:
            claim = None  # another run's (a run started from within a run)
        tracer = _get_tracer()
        self.span = tracer.start_span(
            f"process {job.name}",
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": SYSTEM,
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.message.id": job.id,
                "messaging.destination.name": job.name,
                "emit.job.attempt": job.attempt_number,
            },
            links=spans.links(claim.carrier) if claim is not None and claim.carrier else None,
            start_time=claim.started if claim is not None else None,
        )
        self.context = trace.set_span_in_context(self.span)
        if claim is not None:
            span = spans.client_span(
                _get_tracer(), claim.call, claim.client, self.context, start=claim.started
            )
            span.end(end_time=claim.ended)
        self._tokens = (context.attach(self.context), _current.set(self))
        return self

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        from opentelemetry import context
        from opentelemetry.trace import StatusCode

        attached, token = self._tokens
        _current.reset(token)
        context.detach(attached)
        span = self.span
        if exc is not None and not self.settled:  # the run itself raised, or was cancelled
            if isinstance(exc, Exception):
                span.record_exception(exc)
                span.set_attribute("error.type", spans.type_name(exc))
                span.set_status(StatusCode.ERROR, str(exc))
            else:
                span.set_status(StatusCode.ERROR, "the run was cancelled")
        span.end()

    def outcome(self, status: str, error: str | None = None, reason: str | None = None) -> None:
        """How the run ended (``completed``, ``failed``, ``killed``, ``skipped``)."""
        from opentelemetry.trace import StatusCode

        self.settled = True
        span = self.span
        span.set_attribute("emit.job.outcome", status)
        if reason is not None:
            span.set_attribute("emit.job.reason", reason)
        if status == "failed":
            raised = self.raised
            span.set_attribute(
                "error.type", "_OTHER" if raised is None else spans.type_name(raised)
            )
            span.set_status(StatusCode.ERROR, error)

    def exception(self, exc: BaseException) -> None:
        """The function raised ``exc`` (a kill is no failure of it: not recorded)."""
        if not isinstance(exc, JobKilledError):
            self.raised = exc
            self.span.record_exception(exc)

    def middleware(self, layers: Sequence[_Layer]) -> Sequence[_Layer]:
        return [self._catch, *layers]  # outermost: it sees what fails the job

    async def _catch(self, job: Any, call_next: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await call_next()
        except Exception as exc:
            self.exception(exc)
            raise


# -- the run's calls --------------------------------------------------------------------


def call_span(call: Call[Any], client: Client) -> _Noop | _CallSpan:
    """``with call_span(call, client):`` around sending one call of a run: a CLIENT child
    of the run's span, wherever in the function the call is made (a log batch is sent
    from a task of its own), and current while it is sent, so that an instrumented HTTP
    client's spans nest under it."""
    run = _current.get()
    if run is None or not run.span.is_recording():
        return NOOP
    return _CallSpan(run, call, client)


class _CallSpan:
    __slots__ = ("_call", "_client", "_run", "_span", "_token")

    def __init__(self, run: _Run, call: Call[Any], client: Client) -> None:
        self._run = run
        self._call = call
        self._client = client

    def __enter__(self) -> None:
        from opentelemetry import context, trace

        self._span = spans.client_span(_get_tracer(), self._call, self._client, self._run.context)
        self._token = context.attach(trace.set_span_in_context(self._span))

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        from opentelemetry import context

        context.detach(self._token)
        if isinstance(exc, Exception):
            spans.failed_call(self._span, exc)
        self._span.end()
