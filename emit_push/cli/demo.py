"""``emit-push demo``: everything, on the embedded defaults, in a few seconds.

It starts the local emit server (in memory) and a small ``EmitPush`` app on uvicorn, both
on free loopback ports, points the space's push at the app, and creates five jobs: one
that completes at once, one that fails once and succeeds on its retry, one that reports
sub-progress, one scheduled a second ahead for a ``def`` handler, and one that is killed
halfway. The space's realtime stream drives a live view; a summary read back from the
server ends it, and the command exits 0 when every job ended as planned.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel

from .. import EmitPush, Job, SyncJob
from .._client import AsyncEmitClient
from ..server import EmitServer, ServerConfig
from .serving import base_url, bind, uvicorn_server, uvicorn_server_for

__all__ = ["run_demo"]

PLAN = {  # name -> (final status, attempt number)
    "send-welcome-email": ("completed", 0),
    "resize-image": ("completed", 1),
    "transcode-video": ("completed", 0),
    "nightly-report": ("completed", 0),
    "slow-export": ("killed", 0),
}
STEP = 0.12  # seconds of pretend work per step: slow enough to watch


class Video(BaseModel):
    source: str
    formats: list[str]


def demo_app(killed: asyncio.Event, **settings: Any) -> EmitPush:
    app = EmitPush(keepalive_interval=0.2, **settings)

    @app.on_job("send-welcome-email")
    async def send_welcome_email(job: Job) -> dict[str, str]:
        job.log.info("rendering the template", metadata={"to": job.payload["to"]})
        await job.progress(100, "sent")
        return {"messageId": f"msg-{job.id[-6:]}"}

    @app.on_job("resize-image")
    async def resize_image(job: Job) -> dict[str, Any]:
        await job.progress(30, "downloading")
        await asyncio.sleep(STEP)
        if job.attempt_number == 0:
            job.log.error("the image service did not answer in time")
            raise TimeoutError("image service timed out")
        await job.progress(100, "resized")
        return {"width": job.payload["width"], "attempt": job.attempt_number}

    @app.on_job("transcode-video")
    async def transcode_video(job: Job[Video]) -> dict[str, list[str]]:
        stages = {"download": 0, **dict.fromkeys(job.payload.formats, 0), "upload": 0}
        for stage in stages:
            for percent in (50, 100):
                stages[stage] = percent
                overall = sum(stages.values()) / len(stages)
                sub = {name: {"percent": value} for name, value in stages.items()}
                await job.progress(overall, f"{stage} {percent}%", sub_progress=sub)
                await asyncio.sleep(STEP / 2)
            job.log.info(f"{stage} done")
        await job.checkpoint({"stages": list(stages)})
        return {"outputs": [f"{job.payload.source}.{fmt}" for fmt in job.payload.formats]}

    @app.on_job("nightly-report")
    def nightly_report(job: SyncJob) -> dict[str, int]:
        job.progress(50, "summing")
        job.log.info("report ready", metadata={"day": job.payload["day"]})
        return {"rows": 42}

    @app.on_job("slow-export")
    async def slow_export(job: Job) -> None:
        for percent in range(10, 101, 10):
            await job.progress(percent, f"exported {percent * 100} rows")
            if percent == 30:
                killed.set()  # the producer kills it now; a keepalive notices
            await asyncio.sleep(STEP)

    return app


@dataclass
class Row:
    name: str
    status: str = "created"
    attempt: int = 0
    percent: float = 0.0
    message: str = ""
    notes: list[str] = field(default_factory=list)


async def run_demo() -> int:
    from rich.console import Console

    console = Console(highlight=False)
    killed = asyncio.Event()
    emit = EmitServer(ServerConfig(db_path=":memory:"))
    server_ready, app_ready = asyncio.Event(), asyncio.Event()
    emit_sock, app_sock = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    api = base_url(emit_sock)
    server = uvicorn_server(emit, on_started=server_ready.set)
    serving = [asyncio.create_task(server.serve(sockets=[emit_sock]))]
    await server_ready.wait()
    creds = emit.credentials
    secret = secrets.token_urlsafe(16)
    app = demo_app(
        killed, space_id=creds.space_id, api_key=creds.worker_key, base_url=api, push_secret=secret
    )
    web = uvicorn_server_for(app.asgi(), on_started=app_ready.set)
    serving.append(asyncio.create_task(web.serve(sockets=[app_sock])))
    await app_ready.wait()
    app_url = base_url(app_sock).removesuffix("/api/v1") + "/"
    console.print(f"emit local server on [bold]{api}[/], the demo app on [bold]{app_url}[/]")
    dashboard = api.removesuffix("/api/v1") + "/dashboard/"
    console.print(f"the dashboard, while the demo runs: [bold]{dashboard}[/]\n")
    producer = AsyncEmitClient(space_id=creds.space_id, api_key=creds.producer_key, base_url=api)
    try:
        async with httpx.AsyncClient(headers={"x-api-key": creds.producer_key}) as http:
            push = {"url": app_url, "headers": {"Authorization": f"Bearer {secret}"}}
            (await http.put(f"{api}/spaces/{creds.space_id}/push", json=push)).raise_for_status()
        rows = await _run(console, producer, killed)
        return await _summary(console, producer, rows)
    finally:
        await producer.aclose()
        await app.aclose()
        web.should_exit = server.should_exit = True
        await asyncio.gather(*serving)


async def _run(console: Any, producer: AsyncEmitClient, killed: asyncio.Event) -> dict[str, Row]:
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    specs: list[dict[str, Any]] = [
        {"name": "send-welcome-email", "payload": {"to": "ada@example.com"}},
        {"name": "resize-image", "payload": {"key": "cat.png", "width": 640}, "max_retries": 2},
        {"name": "transcode-video", "payload": {"source": "clip", "formats": ["720p", "1080p"]}},
        {"name": "nightly-report", "payload": {"day": "today"}, "scheduled_for": soon},
        {"name": "slow-export", "payload": {"rows": 1000}},
    ]
    rows: dict[str, Row] = {}
    done = asyncio.Event()
    stream = producer.realtime.space()
    watcher = asyncio.create_task(_watch(console, stream, rows, done))
    refs = await producer.jobs.create(specs)
    for spec, ref in zip(specs, refs, strict=True):
        rows.setdefault(ref.id, Row(spec["name"]))
    export = refs[-1].id
    await killed.wait()
    await producer.jobs.kill(export, "cancelled by the producer")
    await asyncio.wait_for(done.wait(), 30)
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher  # the live view's last frame is out before the summary
    return rows


async def _watch(console: Any, stream: Any, rows: dict[str, Row], done: asyncio.Event) -> None:
    from rich.live import Live

    with Live(_table(rows), console=console, refresh_per_second=12, transient=False) as live:
        async for event in stream:
            if not event.job_id:  # `connected`: the stream's own greeting
                continue
            row = rows.setdefault(event.job_id, Row(event.job_name or "?"))
            _apply(row, event)
            if not console.is_terminal and event.type in {
                "retried",
                "completed",
                "dead",
                "killed",
                "scheduled",
            }:
                console.print(f"  {row.name:<20} {event.type}{_detail(event)}")
            live.update(_table(rows))
            finished = [r for r in rows.values() if r.status in {"completed", "dead", "killed"}]
            if len(rows) == len(PLAN) and len(finished) == len(PLAN):
                done.set()


def _apply(row: Row, event: Any) -> None:
    if event.type in {"created", "scheduled", "pending", "delivered", "running", "retried",
                      "completed", "dead", "killed"}:  # fmt: skip
        row.status = event.status or event.type
    if event.type == "progress" and isinstance(event.data, dict):
        row.percent = float(event.data.get("percent", 0))
        row.message = str(event.data.get("message", ""))
    elif event.type == "retried" and isinstance(event.data, dict):
        row.attempt = int(event.data.get("attemptNumber", row.attempt))
        row.percent, row.message = 0.0, f"retrying: {event.data.get('error')}"
    elif event.type == "completed":
        row.percent, row.message = 100.0, "done"
    elif event.type == "killed":
        row.message = "killed"


def _detail(event: Any) -> str:
    if isinstance(event.data, dict) and event.type in {"retried", "killed", "dead"}:
        return f": {json.dumps(event.data)}"
    return ""


def _table(rows: dict[str, Row]) -> Any:
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("job", "status", "try", "progress", ""):
        table.add_column(column)
    for row in rows.values():
        bar = ProgressBar(total=100, completed=row.percent, width=24)
        table.add_row(row.name, row.status, str(row.attempt), bar, row.message[:48])
    return table


async def _summary(console: Any, producer: AsyncEmitClient, rows: dict[str, Row]) -> int:
    from rich.table import Table

    console.print()
    table = Table(title="Read back from the server")
    for column in ("job", "status", "attempt", "events", "logs", "result"):
        table.add_column(column)
    ok = True
    for job_id in rows:
        job = await producer.jobs.get(job_id)
        logs = await producer.jobs.logs(job_id)
        result = json.dumps(job.result)
        shown = result if len(result) < 60 else result[:57] + "..."
        counts = (str(job.attempt_number), str(len(job.events)), str(len(logs.logs)))
        table.add_row(job.name, job.status, *counts, shown)
        ok &= PLAN.get(job.name) == (job.status, job.attempt_number)
    console.print(table)
    console.print(
        "Every job ended as planned." if ok else "[red]Some jobs did not end as planned.[/]"
    )
    return 0 if ok else 1
