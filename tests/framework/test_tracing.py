"""OpenTelemetry: each run is a CONSUMER span, its API calls CLIENT children.

Spans go to an in-memory exporter through a provider handed to emit-push's tracer
(``tracing.use_provider``): the global provider can be set only once a process, and the
other tests' runs stay untraced. Runs go through the in-process emit server.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from emit_push import AsyncEmitClient, ConfigurationError, EmitPush, Job, PushResult, SyncJob
from emit_push._framework import spans as span_parts
from emit_push._framework import tracing
from emit_push._wire.endpoints import claim
from emit_push.adapters.aws_lambda import lambda_handler
from emit_push.adapters.gcp_functions import http_function
from emit_push.server import EmitServer
from tests.conftest import ADMIN_KEY, SPACE, WORKER_KEY, LiveServer
from tests.framework.conftest import BASE, create, job, push
from tests.harnesses.events import build_event

MakeApp = Callable[..., EmitPush]

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


@pytest.fixture(scope="module")
def traced() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    yield provider, exporter
    tracing.use_provider(None)
    provider.shutdown()


@pytest.fixture
def provider(traced: tuple[TracerProvider, InMemorySpanExporter]) -> TracerProvider:
    return traced[0]


@pytest.fixture
def exporter(traced: tuple[TracerProvider, InMemorySpanExporter]) -> InMemorySpanExporter:
    traced[1].clear()
    return traced[1]


@pytest.fixture(params=["async", "sync"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def only(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, [span.name for span in spans]
    return found[0]


def children(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return sorted(
        (s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id),
        key=lambda span: span.start_time or 0,
    )


def run_attributes(job_id: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "messaging.system": "emit.run",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.message.id": job_id,
        "messaging.destination.name": name,
        "emit.job.attempt": 0,
        **extra,
    }


def register(app: EmitPush, name: str, kind: str, body: Callable[[Any], Any]) -> None:
    """``body(job)`` as the ``async def`` or the ``def`` handler of ``name``."""
    if kind == "async":

        async def handler(job: Job) -> Any:
            return body(job)

        app.on_job(name)(handler)
    else:

        def sync_handler(job: SyncJob) -> Any:
            return body(job)

        app.on_job(name)(sync_handler)


# -- a run ------------------------------------------------------------------------------


async def test_a_completed_run_is_a_consumer_span_with_its_calls_as_client_children(
    make_app: MakeApp, admin: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    app = make_app()

    @app.on_job("resize")
    async def resize(job: Job) -> dict[str, bool]:
        await job.progress(50, "halfway")
        return {"ok": True}

    job_id = await create(admin, "resize", {"url": "s3://secret-bucket/a.png"})
    assert (await push(app, job_id, "resize")).status == "completed"

    spans = exporter.get_finished_spans()
    run = only(spans, "process resize")
    assert run.kind is SpanKind.CONSUMER
    assert run.parent is None  # nothing was current: a root
    assert dict(run.attributes or {}) == run_attributes(
        job_id, "resize", **{"emit.job.outcome": "completed"}
    )
    assert run.status.status_code is StatusCode.UNSET
    calls = children(spans, run)
    assert [span.name for span in calls] == [
        "POST /jobs/{id}/claim",
        "POST /jobs/{id}/ack",
        "POST /jobs/{id}/progress",
        "POST /jobs/{id}/complete",
    ]
    assert all(span.kind is SpanKind.CLIENT for span in calls)
    assert dict(calls[1].attributes or {}) == {
        "http.request.method": "POST",
        "url.template": "/jobs/{id}/ack",
        "url.full": f"{BASE}/jobs/{job_id}/ack",
        "server.address": "emit.test",
        "server.port": 80,
    }
    assert run.start_time == calls[0].start_time  # the run counts from its claim
    assert len(spans) == 5  # nothing else: no stray span
    # Nothing of the payload or the result, nor any key, in any span.
    dump = "".join(span.to_json() for span in spans)
    assert "secret-bucket" not in dump
    assert "emit_test" not in dump
    assert '"ok"' not in dump


async def test_a_raising_handler_fails_the_span_with_its_exception(
    make_app: MakeApp, admin: httpx.AsyncClient, exporter: InMemorySpanExporter, kind: str
) -> None:
    app = make_app()

    def on_fire(job: Any) -> None:
        raise RuntimeError("database is on fire")

    register(app, "burn", kind, on_fire)
    job_id = await create(admin, "burn")
    result = await push(app, job_id, "burn")
    assert (result.status, result.error) == ("failed", "RuntimeError: database is on fire")

    spans = exporter.get_finished_spans()
    run = only(spans, "process burn")
    assert run.status.status_code is StatusCode.ERROR
    assert run.status.description == "RuntimeError: database is on fire"
    assert (run.attributes or {})["emit.job.outcome"] == "failed"
    assert (run.attributes or {})["error.type"] == "RuntimeError"
    [event] = run.events
    assert event.name == "exception"
    assert dict(event.attributes or {})["exception.type"] == "RuntimeError"
    assert dict(event.attributes or {})["exception.message"] == "database is on fire"
    assert "on_fire" in str(dict(event.attributes or {})["exception.stacktrace"])
    names = [span.name for span in children(spans, run)]
    assert names[-1] == "POST /jobs/{id}/fail"
    assert "POST /jobs/{id}/complete" not in names


async def test_a_failure_without_an_exception_is_an_error_too(
    make_app: MakeApp, admin: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    app = make_app()

    @app.on_job("strict")
    async def strict(job: Job[dict[str, int]]) -> None:
        pass

    job_id = await create(admin, "strict", {"width": "wide"})
    assert (await push(app, job_id, "strict")).status == "failed"
    run = only(exporter.get_finished_spans(), "process strict")
    assert run.status.status_code is StatusCode.ERROR
    assert (run.attributes or {})["error.type"] == "_OTHER"
    assert (run.attributes or {})["emit.job.reason"] == "invalid payload"
    assert run.events == ()  # no exception was raised in the function


async def test_a_kill_is_no_error(
    make_app: MakeApp, admin: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    app = make_app()

    @app.on_job("doomed")
    async def doomed(job: Job) -> None:
        await admin.post(f"/jobs/{job.id}/kill", json={"reason": "no longer needed"})
        await job.progress(1, "too late")

    job_id = await create(admin, "doomed")
    assert (await push(app, job_id, "doomed")).status == "killed"
    spans = exporter.get_finished_spans()
    run = only(spans, "process doomed")
    assert (run.attributes or {})["emit.job.outcome"] == "killed"
    assert run.status.status_code is StatusCode.UNSET
    assert run.events == ()
    refused = only(spans, "POST /jobs/{id}/progress")  # the call itself did fail: 409
    assert refused.status.status_code is StatusCode.ERROR
    assert (refused.attributes or {})["http.response.status_code"] == 409
    assert (refused.attributes or {})["error.type"] == "409"


async def test_the_run_span_is_current_in_the_function(
    make_app: MakeApp,
    admin: httpx.AsyncClient,
    exporter: InMemorySpanExporter,
    provider: TracerProvider,
    kind: str,
) -> None:
    app = make_app()
    tracer = provider.get_tracer("users-code")

    def traced(job: Any) -> None:
        with tracer.start_as_current_span("resize the image"):
            pass

    register(app, "mine", kind, traced)
    assert (await push(app, await create(admin, "mine"), "mine")).status == "completed"
    spans = exporter.get_finished_spans()
    run = only(spans, "process mine")
    own = only(spans, "resize the image")
    assert own.parent is not None
    assert run.context is not None
    assert own.parent.span_id == run.context.span_id
    assert own.context is not None
    assert own.context.trace_id == run.context.trace_id


async def test_a_polled_run_is_a_span_too(
    make_app: MakeApp, admin: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    app = make_app()
    app.on_job("polled")(lambda job: None)
    job_id = await create(admin, "polled")
    descriptor = await app.client().send(claim(job_id))  # as a poll claims
    assert (await app.runner.run_claimed(descriptor)).status == "completed"
    spans = exporter.get_finished_spans()
    run = only(spans, "process polled")
    assert (run.attributes or {})["emit.job.outcome"] == "completed"
    assert [span.name for span in children(spans, run)] == [
        "POST /jobs/{id}/ack",
        "POST /jobs/{id}/complete",
    ]


async def test_an_ambient_span_is_the_runs_parent(
    make_app: MakeApp,
    admin: httpx.AsyncClient,
    exporter: InMemorySpanExporter,
    provider: TracerProvider,
) -> None:
    # An instrumented web framework (or the Lambda layer) has a span for the request.
    app = make_app()
    app.on_job("nested")(lambda job: None)
    job_id = await create(admin, "nested")
    with provider.get_tracer("web").start_as_current_span("POST /emit") as request:
        await push(app, job_id, "nested")
    run = only(exporter.get_finished_spans(), "process nested")
    assert run.parent is not None
    assert run.parent.span_id == request.get_span_context().span_id


# -- pushes -----------------------------------------------------------------------------


@pytest.mark.parametrize("background", [False, True])
async def test_a_pushed_traceparent_is_linked_not_made_the_parent(
    make_app: MakeApp,
    admin: httpx.AsyncClient,
    exporter: InMemorySpanExporter,
    background: bool,
) -> None:
    app = make_app()
    app.on_job("linked")(lambda job: None)
    job_id = await create(admin, "linked")
    transport = httpx.ASGITransport(app=app.asgi(background=background))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as web:
        answer = await web.post(
            "/",
            content=json.dumps({"jobId": job_id, "name": "linked"}),
            headers={"TraceParent": TRACEPARENT, "tracestate": "vendor=1"},
        )
    assert answer.status_code == (202 if background else 200)
    await app.aclose()  # waits for the background run
    assert (await job(admin, job_id))["status"] == "completed"

    run = only(exporter.get_finished_spans(), "process linked")
    assert run.parent is None
    [link] = run.links
    assert f"{link.context.trace_id:032x}" == TRACE_ID
    assert f"{link.context.span_id:016x}" == PARENT_ID
    assert link.context.is_remote
    assert run.context is not None
    assert f"{run.context.trace_id:032x}" != TRACE_ID


async def test_a_malformed_traceparent_is_no_link(
    make_app: MakeApp, admin: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    app = make_app()
    app.on_job("plain")(lambda job: None)
    job_id = await create(admin, "plain")
    body = json.dumps({"jobId": job_id}).encode()
    with tracing.incoming({"traceparent": "00-not-a-trace-01"}):
        assert (await app.handle_push(body, {})).status == "completed"
    assert only(exporter.get_finished_spans(), "process plain").links == ()


def test_the_cloud_functions_adapter_hands_the_traceparent_to_the_run() -> None:
    # The function runs in a request thread; the push runs on the adapter's loop thread.
    seen: list[Any] = []

    class Watched(EmitPush):
        async def handle_push(
            self, body: bytes, headers: Any, **kw: Any
        ) -> PushResult:  # what a run would link to
            seen.append(tracing._incoming.get())
            return PushResult("ignored", "job_1")

    class Request:
        headers = {"Traceparent": TRACEPARENT, "Content-Type": "application/json"}

        class stream:
            @staticmethod
            def read(size: int) -> bytes:
                return b""

    function = http_function(Watched(space_id=SPACE, api_key="k", push_secret=None))
    function(Request())  # type: ignore[arg-type]
    assert seen == [{"traceparent": TRACEPARENT}]
    assert tracing._incoming.get() is None  # reset after the push


def test_through_lambda_the_invocations_span_is_the_parent_and_the_push_a_link(
    live_server: LiveServer, exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    # Mangum and the adapter's own event loop, invoked from a fresh thread, as the Lambda
    # runtime does; the ADOT layer's wrapper makes the invocation's span current first.
    app = EmitPush(
        space_id=SPACE, api_key=WORKER_KEY, base_url=live_server.base_url, push_secret="s3"
    )
    app.on_job("thumbnail")(lambda job: {"ok": True})
    handler = lambda_handler(app)
    with httpx.Client(base_url=live_server.base_url, headers={"x-api-key": ADMIN_KEY}) as admin:
        created = admin.post(f"/spaces/{SPACE}/jobs", json={"name": "thumbnail"})
        job_id = created.json()["id"]
    headers = {"authorization": "Bearer s3", "traceparent": TRACEPARENT}
    event = build_event("lambda_function_url", {"jobId": job_id}, headers)
    answers: list[dict[str, Any]] = []

    def invoke() -> None:
        with provider.get_tracer("adot").start_as_current_span("invocation"):
            answers.append(handler(event, LambdaContext()))

    thread = threading.Thread(target=invoke)
    thread.start()
    thread.join(30)
    [loop] = list(app.runner.clients)
    loop.run_until_complete(app.aclose())
    loop.close()
    asyncio.set_event_loop(None)  # the handler had made it this thread's loop

    assert json.loads(answers[0]["body"])["status"] == "completed"
    spans = exporter.get_finished_spans()
    run = only(spans, "process thumbnail")
    invocation = only(spans, "invocation")
    assert run.parent is not None
    assert invocation.context is not None
    assert run.parent.span_id == invocation.context.span_id
    assert [f"{link.context.trace_id:032x}" for link in run.links] == [TRACE_ID]
    assert dict(run.attributes or {}) == run_attributes(
        job_id, "thumbnail", **{"emit.job.outcome": "completed"}
    )
    assert [span.name for span in children(spans, run)] == [
        "POST /jobs/{id}/claim",
        "POST /jobs/{id}/ack",
        "POST /jobs/{id}/complete",
    ]


class LambdaContext:
    aws_request_id = "traced"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


async def test_a_refused_claim_is_an_error_span_and_a_duplicate_push_none(
    make_app: MakeApp,
    admin: httpx.AsyncClient,
    exporter: InMemorySpanExporter,
    emit: EmitServer,
) -> None:
    transport = httpx.ASGITransport(app=emit.app)
    wrong = AsyncEmitClient(space_id=SPACE, api_key="wrong", base_url=BASE, transport=transport)
    refused = make_app(client=wrong)
    refused.on_job("twice")(lambda job: None)
    job_id = await create(admin, "twice")
    assert (await push(refused, job_id, "twice")).code == "claim_refused"
    [span] = exporter.get_finished_spans()
    assert (span.name, span.kind, span.parent) == ("POST /jobs/{id}/claim", SpanKind.CLIENT, None)
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["http.response.status_code"] == 401
    assert "wrong" not in span.to_json()  # the key is in no span

    exporter.clear()
    app = make_app()
    app.on_job("twice")(lambda job: None)
    assert (await push(app, job_id, "twice")).status == "completed"
    assert (await push(app, job_id, "twice")).status == "skipped"  # costs no span
    assert [span.name for span in exporter.get_finished_spans()].count("process twice") == 1
    assert len(exporter.get_finished_spans()) == 4  # the run, its claim, ack and complete


# -- off --------------------------------------------------------------------------------


async def test_an_app_made_with_tracing_off_makes_no_span(
    make_app: MakeApp, admin: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    app = make_app(tracing=False)
    app.on_job("quiet")(lambda job: None)
    assert (await push(app, await create(admin, "quiet"), "quiet")).status == "completed"
    bound = app.with_client(app.client())  # a copy stays off
    bound_job = await create(admin, "quiet")
    assert (await push(bound, bound_job, "quiet")).status == "completed"
    assert exporter.get_finished_spans() == ()


def test_tracing_must_be_a_bool() -> None:
    with pytest.raises(ConfigurationError, match="tracing"):
        EmitPush(space_id=SPACE, api_key="k", tracing="no")  # type: ignore[arg-type]


def test_nothing_is_traced_and_nothing_allocated_without_a_run() -> None:
    from emit_push._wire.calls import Call

    call: Call[Any] = Call("POST", "/jobs/j/ack", lambda response: None)
    assert tracing.call_span(call, object()) is tracing.NOOP  # type: ignore[arg-type]
    assert tracing.incoming({"content-type": "application/json"}) is tracing.NOOP
    assert span_parts.template("/jobs/j_1/logs") == "/jobs/{id}/logs"
    assert span_parts.template("/jobs/j_1") == "/jobs/{id}"


# -- imports ----------------------------------------------------------------------------

RUN = """
import asyncio, json, sys
{before}
from emit_push import EmitPush
from emit_push._framework import tracing
from emit_push.testing import run_handler

app = EmitPush(space_id="s", api_key="k", push_secret=None{options})
app.on_job("noop")(lambda job: None)
for _ in range(2):
    assert asyncio.run(run_handler(app, "noop", {{}})).status == "completed"
loaded = [m for m in sys.modules if m.split(".")[0] == "opentelemetry" and sys.modules[m]]
print(json.dumps([sorted(loaded), tracing._importable]))
"""


@pytest.mark.parametrize(
    ("before", "options", "loaded", "importable"),
    [
        ("", "", True, True),
        ("", ", tracing=False", False, None),  # never even looked for
        ('sys.modules["opentelemetry"] = None', "", False, False),  # as if not installed
    ],
    ids=["installed", "tracing-off", "absent"],
)
def test_a_run_imports_opentelemetry_only_when_installed_and_tracing_is_on(
    before: str, options: str, loaded: bool, importable: bool | None
) -> None:
    script = RUN.format(before=before, options=options)
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    modules, answer = json.loads(out.splitlines()[-1])
    assert ("opentelemetry.trace" in modules) is loaded
    assert modules if loaded else modules == []
    assert answer is importable  # asked once, at the first run, and kept
