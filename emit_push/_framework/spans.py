"""How emit-push's spans are made up, after the OpenTelemetry semantic conventions: a call's
CLIENT span (named as HTTP client spans are, ``POST /jobs/{id}/ack``), a failed call's
status, an exception's type name, and the link to a push's ``traceparent``.

``tracing`` decides when there is a span; this module only builds them. It imports
``opentelemetry`` inside its functions, which run only when there is a span to make.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from .._exceptions import APIError

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Link, Span, Tracer

    from .._wire.calls import Call

    class Client(Protocol):
        """What is read of the API client: where its calls go."""

        @property
        def base_url(self) -> str: ...


__all__ = ["call_attributes", "client_span", "failed_call", "links", "template", "type_name"]


def client_span(
    tracer: Tracer,
    call: Call[Any],
    client: Client,
    parent: Context | None = None,
    links: Sequence[Link] | None = None,
    start: int | None = None,
) -> Span:
    """The CLIENT span of ``call``, named as HTTP client spans are: ``POST /jobs/{id}/ack``."""
    from opentelemetry.trace import SpanKind

    name = f"{call.method} {template(call.path)}"
    attributes = call_attributes(call, client)
    return tracer.start_span(
        name, parent, SpanKind.CLIENT, attributes, links=links, start_time=start
    )


def template(path: str) -> str:
    """``/jobs/{id}/ack`` for ``/jobs/job_123/ack``: the route, not the job."""
    parts = path.split("/")
    if len(parts) > 2 and parts[1] in ("jobs", "spaces"):
        parts[2] = "{id}" if parts[1] == "jobs" else "{space_id}"
    return "/".join(parts)


_servers: dict[str, tuple[str, int | None]] = {}


def call_attributes(call: Call[Any], client: Client) -> dict[str, Any]:
    base_url = client.base_url
    server = _servers.get(base_url)
    if server is None:
        parts = urlsplit(base_url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        server = _servers[base_url] = (parts.hostname or "", port)
    attributes: dict[str, Any] = {
        "http.request.method": call.method,
        "url.template": template(call.path),
        "url.full": base_url + call.path,  # no query: none of a run's calls has one
        "server.address": server[0],
    }
    if server[1] is not None:
        attributes["server.port"] = server[1]
    return attributes


def failed_call(span: Span, error: BaseException) -> None:
    from opentelemetry.trace import StatusCode

    status = error.status if isinstance(error, APIError) else None
    if status is not None:
        span.set_attribute("http.response.status_code", status)
    span.set_attribute("error.type", str(status) if status is not None else type_name(error))
    span.record_exception(error)
    span.set_status(StatusCode.ERROR, str(error))


def type_name(exc: BaseException) -> str:
    kind = type(exc)
    module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
    return module + kind.__qualname__


def links(carrier: Mapping[str, str]) -> list[Link] | None:
    """A link to the span a push's ``traceparent`` names, when it is a valid one."""
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    remote = trace.get_current_span(TraceContextTextMapPropagator().extract(carrier))
    context = remote.get_span_context()
    return [trace.Link(context)] if context.is_valid else None
