"""emit.run jobs on AWS Lambda, behind a Function URL (see template.yaml at the repo root).

    sam build && sam deploy --guided     # then paste the PushUrl output into emit's push
                                         # settings, with Authorization: Bearer <secret>

The handler below is what ``template.yaml`` points at (``Handler: app.handler``). It
also takes the template's once-a-minute EventBridge schedule: such an invocation runs
``app.sweep()``, so a job whose push was lost still runs (``EmitSweep=DISABLED`` turns
the schedule off). The template keeps the API key and the push secret in Secrets Manager
(or SSM Parameter Store): ``EMIT_API_KEY_FROM`` / ``EMIT_PUSH_SECRET_FROM`` say where, and
the handler reads them at its first invocation, once per container.

``sam build`` runs this folder's Makefile: a wheel of the checkout, installed for arm64
and CPython 3.12, with this module beside it.
"""

from __future__ import annotations

from pydantic import BaseModel

from emit_push import EmitPush, Job
from emit_push.adapters.aws_lambda import lambda_handler

app = EmitPush()


class Thumbnail(BaseModel):
    image_url: str
    sizes: list[int] = [128, 512]


@app.on_job("thumbnail")
async def thumbnail(job: Job[Thumbnail]) -> dict[str, object]:
    made = []
    for n, size in enumerate(job.payload.sizes, start=1):
        job.log.info("resizing", metadata={"size": size})
        made.append(f"{job.payload.image_url}@{size}")
        await job.progress(100 * n / len(job.payload.sizes), f"{size}px done")
    job.log.info("done", metadata={"remaining_seconds": round(job.remaining() or 0)})
    return {"thumbnails": made}


handler = lambda_handler(app)
