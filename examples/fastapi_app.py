"""emit.run jobs in a FastAPI app: pushes arrive at /emit/ and run the handlers below.

    EMIT_SPACE_ID=... EMIT_API_KEY=... EMIT_PUSH_SECRET=... uvicorn examples.fastapi_app:api

Then set the space's push URL to https://your.host/emit/ (mind the trailing slash) with
the header ``Authorization: Bearer <EMIT_PUSH_SECRET>``.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from pydantic import BaseModel

from emit_push import EmitPush, Job, SyncJob

app = EmitPush()


class Transcode(BaseModel):
    input_url: str
    output_key: str


class Thumbnail(BaseModel):
    image_url: str
    width: int = 320


@app.on_job("transcode")
async def transcode(job: Job[Transcode]) -> dict[str, str]:
    job.log.info("starting", metadata={"attempt": job.attempt_number})
    await job.progress(10, "Downloading source", sub_progress={"download": {"percent": 10}})
    await asyncio.sleep(0)  # the real work would download and transcode here
    await job.checkpoint({"offsetSeconds": 120})
    await job.event({"kind": "codec", "value": "h264"})
    await job.progress(100, "Uploaded", sub_progress={"download": {"percent": 100}})
    job.log.info("done", metadata={"output": job.payload.output_key})
    return {"outputUrl": f"s3://final/{job.payload.output_key}"}


@app.on_job("thumbnail")
def thumbnail(job: SyncJob[Thumbnail]) -> dict[str, object]:
    job.log.info("resizing", metadata={"width": job.payload.width})
    job.progress(50, "Resizing")
    return {"thumbnail": job.payload.image_url, "width": job.payload.width}


api = FastAPI(title="emit-push example")
api.mount("/emit", app.asgi())


@api.get("/")
def index() -> dict[str, str]:
    return {"service": "example", "pushes": "/emit/"}
