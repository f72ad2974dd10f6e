"""emit.run jobs on Google Cloud Functions (functions-framework, HTTP trigger).

    functions-framework --target emit_push_handler          # locally
    gcloud functions deploy emit-jobs --gen2 --runtime python312 --trigger-http \\
        --entry-point emit_push_handler --allow-unauthenticated \\
        --set-env-vars EMIT_SPACE_ID=...,EMIT_API_KEY=...,EMIT_PUSH_SECRET=...

Point the space's push URL at the function's URL, with ``Authorization: Bearer <secret>``.
"""

from __future__ import annotations

from pydantic import BaseModel

from emit_push import EmitPush, SyncJob
from emit_push.adapters.gcp_functions import http_function

app = EmitPush()


class Email(BaseModel):
    to: str
    subject: str


@app.on_job("send-email")
def send_email(job: SyncJob[Email]) -> dict[str, str]:
    job.log.info("sending", metadata={"to": job.payload.to})
    job.progress(50, "rendered")
    return {"status": "sent", "to": job.payload.to}


emit_push_handler = http_function(app)
