"""Failed runs in Sentry, through emit-push's middleware hook.

emit-push catches what a handler raises and fails the job with it (emit.run then retries
it), so the exception never reaches your web framework and Sentry's own integrations do
not see it. This middleware reports it, tagged with the job's name and carrying its id
and attempt, and times each run as a queue consumer for Sentry's Queues view (a
transaction with a ``queue.process`` span). Start Sentry once, as usual, at the top of
the module that builds your app (the DSN comes from ``SENTRY_DSN``):

    sentry_sdk.init(traces_sample_rate=1.0)

    pip install emit-push sentry-sdk
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import sentry_sdk
from pydantic import BaseModel

from emit_push import EmitPush, Job

app = EmitPush()


@app.middleware
async def report_to_sentry(job: Job, call_next: Callable[[], Awaitable[Any]]) -> Any:
    with sentry_sdk.isolation_scope() as scope:  # this run's tags stay with this run
        scope.set_tag("emit.job.name", job.name)
        scope.set_context("emit.job", {"id": job.id, "attempt": job.attempt_number})
        with (
            sentry_sdk.start_transaction(op="function", name=f"process {job.name}"),
            sentry_sdk.start_span(op="queue.process", name=job.name) as span,
        ):
            span.set_data("messaging.message.id", job.id)
            span.set_data("messaging.destination.name", job.name)
            span.set_data("messaging.message.retry.count", job.attempt_number)
            try:
                return await call_next()
            except Exception as exc:
                sentry_sdk.capture_exception(exc)
                raise  # emit-push still fails the job, so that it is retried


class Charge(BaseModel):
    customer: str
    cents: int


@app.on_job("charge")
async def charge(job: Job[Charge]) -> dict[str, str]:
    if job.payload.cents <= 0:
        raise ValueError(f"cannot charge {job.payload.cents} cents")
    return {"receipt": f"r-{job.payload.customer}"}
