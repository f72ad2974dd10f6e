"""The app the runtime scenarios run: one handler per behaviour, in async and sync kinds.

Served by every adapter: ``asgi`` here (uvicorn), ``scenario_lambda.handler``
(awslambdaric + Mangum) and ``scenario_gcf.gcf`` (functions-framework). Settings come
from the environment the test gives.
"""

from __future__ import annotations

import asyncio
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
