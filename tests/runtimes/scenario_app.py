"""The app the runtime scenarios run: one handler per behaviour, in async and sync kinds.

Served by every adapter: ``asgi`` here (uvicorn), ``scenario_lambda.handler``
(awslambdaric + Mangum) and ``scenario_gcf.gcf`` (functions-framework). Settings come
from the environment the test gives.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any

from emit_push import EmitPush, Job, SyncJob

app = EmitPush(deadline_margin=1.0)


# -- ok: a full run -------------------------------------------------------------------


@app.on_job("ok-async")
async def ok_async(job: Job) -> dict[str, Any]:
    for n in range(3):
        job.log.info(f"line {n}", metadata={"kind": "async"})
    await job.progress(50, "halfway", sub_progress={"step": {"percent": 50}})
    await job.checkpoint({"at": 50})
    await job.event({"kind": "note"})
    return {"payload": job.payload, "kind": "async"}


@app.on_job("ok-sync")
def ok_sync(job: SyncJob) -> dict[str, Any]:
    for n in range(3):
        job.log.info(f"line {n}", metadata={"kind": "sync"})
    job.progress(50, "halfway", sub_progress={"step": {"percent": 50}})
    job.checkpoint({"at": 50})
    job.event({"kind": "note"})
    return {"payload": job.payload, "kind": "sync"}


# -- stdlib: a library's logging records, inside a run ----------------------------------

library = logging.getLogger("scenario.library")


@app.on_job("stdlib-async")
async def stdlib_async(job: Job) -> None:
    library.warning("from the task of %s", job.id)


@app.on_job("stdlib-sync")
def stdlib_sync(job: SyncJob) -> None:
    library.warning("from the thread of %s", job.id)


# -- flaky: the first attempt raises ---------------------------------------------------


def _flaky(job: Job | SyncJob) -> dict[str, int]:
    job.log.warn(f"attempt {job.attempt_number}")
    if job.attempt_number == 0:
        raise RuntimeError("first attempt fails")
    return {"attempt": job.attempt_number}


@app.on_job("flaky-async")
async def flaky_async(job: Job) -> dict[str, int]:
    return _flaky(job)


@app.on_job("flaky-sync")
def flaky_sync(job: SyncJob) -> dict[str, int]:
    return _flaky(job)


# -- long: runs until killed ----------------------------------------------------------


@app.on_job("long-async", keepalive_interval=0.1)
async def long_async(job: Job) -> None:
    job.log.info("started")
    await job.progress(1, "started")
    await asyncio.sleep(60)  # a kill, seen by a keepalive, cancels this


@app.on_job("long-sync", keepalive_interval=0.1)
def long_sync(job: SyncJob) -> None:
    job.log.info("started")
    job.progress(1, "started")
    for _ in range(6000):  # the next call after the kill raises JobKilledError
        time.sleep(0.01)
        job.log.debug("tick")
        if job.killed:
            break
        job.keepalive()


# -- slow: outlives its deadline (the platform's time, or max_runtime=3) ----------------


@app.on_job("slow-async", max_runtime=3)
async def slow_async(job: Job) -> None:
    job.log.info("started")
    await asyncio.sleep(60)  # the deadline cancels this


@app.on_job("slow-sync", max_runtime=3)
def slow_sync(job: SyncJob) -> None:
    job.log.info("started")
    time.sleep(10)  # abandoned in its thread; the job is failed without waiting


asgi = app.asgi()


# -- tracing: spans written to a file, for the tests to read ------------------------------


def trace_to(path: str) -> Any:
    """A tracer provider writing each finished span to ``path``, a JSON line each (name,
    kind, ids, parent, attributes, status, event names, linked trace ids). The processes of awslambdaric
    and functions-framework set it as the global provider, as a user would."""
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class ToFile(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            with open(path, "a", encoding="utf-8") as file:
                for span in spans:
                    file.write(json.dumps(_span(span)) + "\n")
            return SpanExportResult.SUCCESS

    def _span(span: ReadableSpan) -> dict[str, Any]:
        context = span.get_span_context()
        assert context is not None
        return {
            "name": span.name,
            "kind": span.kind.name,
            "trace_id": context.trace_id,
            "span_id": context.span_id,
            "parent_id": span.parent.span_id if span.parent else None,
            "attributes": dict(span.attributes or {}),
            "status": span.status.status_code.name,
            "events": [event.name for event in span.events],
            "links": [link.context.trace_id for link in span.links],
        }

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ToFile()))
    return provider


def trace_from_environment() -> None:
    """In the process of a runtime: spans to the file ``SCENARIO_SPANS`` names, if any."""
    if path := os.environ.get("SCENARIO_SPANS"):
        from opentelemetry import trace

        trace.set_tracer_provider(trace_to(path))
