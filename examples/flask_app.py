"""emit.run jobs in a Flask app: pushes arrive at /emit/ and run the handlers below.

    EMIT_SPACE_ID=... EMIT_API_KEY=... EMIT_PUSH_SECRET=... flask --app examples.flask_app:web run
    gunicorn --threads 8 examples.flask_app:web                      # in production

Then set the space's push URL to https://your.host/emit/ (mind the trailing slash) with
the header ``Authorization: Bearer <EMIT_PUSH_SECRET>``. A job runs inside its push's
request: give the WSGI server a thread for each job that may run at once, and keep any
request timeout in front of it (a proxy's, a sync worker's) above your jobs' timeouts.
"""

from __future__ import annotations

from flask import Flask
from pydantic import BaseModel

from emit_push import EmitPush, Job, SyncJob
from emit_push.adapters.flask import flask_view

app = EmitPush()


class Report(BaseModel):
    account: str
    month: str


class Email(BaseModel):
    to: str
    subject: str


@app.on_job("report")
async def report(job: Job[Report]) -> dict[str, str]:
    job.log.info("building", metadata={"account": job.payload.account})
    await job.progress(50, "Totals computed")
    return {"url": f"s3://reports/{job.payload.account}/{job.payload.month}.pdf"}


@app.on_job("send-email")
def send_email(job: SyncJob[Email]) -> dict[str, str]:  # a def handler: its own thread
    job.log.info("sending", metadata={"to": job.payload.to})
    job.progress(50, "Rendered")
    return {"status": "sent", "to": job.payload.to}


web = Flask(__name__)
web.add_url_rule("/emit/", view_func=flask_view(app))  # POST only


@web.get("/")
def index() -> dict[str, str]:
    return {"service": "example", "pushes": "/emit/"}
