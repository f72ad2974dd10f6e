"""The AWS Lambda adapter in-process: every event shape, from fresh threads, on one loop;
and a scheduled event, which sweeps."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from emit_push import EmitPush
from emit_push.adapters.aws_lambda import is_scheduled, lambda_handler
from tests.conftest import ADMIN_KEY, SPACE, WORKER_KEY, LiveServer
from tests.harnesses.events import EVENTS_DIR, SHAPES, build_event


class Context:
    aws_request_id = "in-process"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def test_every_event_shape_from_fresh_threads_on_one_loop_and_one_client(
    live_server: LiveServer,
) -> None:
    """The handler brings its own loop: Mangum needs a current one, which a thread that
    never ran asyncio lacks (Python 3.14 no longer makes one up), and warm invocations
    share it, and with it the API client and its connection pool."""
    app = EmitPush(
        space_id=SPACE, api_key=WORKER_KEY, base_url=live_server.base_url, push_secret="s3"
    )
    app.on_job("thumbnail")(lambda job: None)
    handler = lambda_handler(app)
    answers: list[dict[str, Any]] = []

    def invoke(event: dict[str, Any]) -> None:
        answers.append(handler(event, Context()))

    for shape in SHAPES:
        push = {"type": "job.pending", "jobId": f"01JNOSUCHJOB{shape[:8]}", "name": "thumbnail"}
        event = build_event(shape, push, {"authorization": "Bearer s3"})
        thread = threading.Thread(target=invoke, args=(event,))
        thread.start()
        thread.join(30)
    statuses = [(a["statusCode"], json.loads(a["body"])["status"]) for a in answers]
    assert statuses == [(200, "skipped")] * len(SHAPES)  # claimed: the server knows no such job
    assert len(app.runner.clients) == 1  # one loop, one client, one pool
    [loop] = list(app.runner.clients)
    loop.run_until_complete(app.aclose())
    loop.close()
    asyncio.set_event_loop(None)  # the handler had made it this thread's loop


SCHEDULED = EVENTS_DIR / "eventbridge_scheduled.json"


def test_only_an_eventbridge_schedule_is_a_scheduled_event() -> None:
    event = json.loads(SCHEDULED.read_text())
    assert is_scheduled(event)
    assert not is_scheduled({**event, "detail-type": "EC2 Instance State-change Notification"})
    assert not is_scheduled({**event, "source": "my.app"})
    for shape in SHAPES:
        assert not is_scheduled(build_event(shape))


def test_a_scheduled_event_sweeps_the_jobs_whose_push_was_lost(live_server: LiveServer) -> None:
    app = EmitPush(
        space_id=SPACE, api_key=WORKER_KEY, base_url=live_server.base_url, push_secret="s3"
    )
    app.on_job("thumbnail")(lambda job: {"made": job.payload["size"]})
    handler = lambda_handler(app)
    with httpx.Client(base_url=live_server.base_url, headers={"x-api-key": ADMIN_KEY}) as admin:
        job_id = admin.post(
            f"/spaces/{SPACE}/jobs", json={"name": "thumbnail", "payload": {"size": 64}}
        ).json()["id"]  # no push setting: this job's push never comes
        answer = handler(json.loads(SCHEDULED.read_text()), Context())
        assert answer == {
            "swept": [
                {"status": "completed", "jobId": job_id, "name": "thumbnail", "attemptNumber": 0}
            ]
        }
        assert admin.get(f"/jobs/{job_id}").json()["result"] == {"made": 64}
        assert handler(json.loads(SCHEDULED.read_text()), Context()) == {"swept": []}
    [loop] = list(app.runner.clients)
    loop.run_until_complete(app.aclose())
    loop.close()
    asyncio.set_event_loop(None)


SWEEP_MODULE = "emit_push._framework.sweep"


def test_only_a_scheduled_event_loads_the_sweep() -> None:
    """A push, cold or warm, does not import the sweep; a scheduled event does."""
    code = f"""
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class EmptyQueue(BaseHTTPRequestHandler):  # no job to poll; a claim finds no such job
    def do_POST(self):
        polled = self.path.endswith("/jobs/poll")
        body = b'{{"jobs": []}}' if polled else b'{{"error": "no such job", "code": "job_not_found"}}'
        self.send_response(200 if polled else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), EmptyQueue)
threading.Thread(target=server.serve_forever, daemon=True).start()

from emit_push import EmitPush
from emit_push.adapters.aws_lambda import lambda_handler
from tests.harnesses.events import build_event

app = EmitPush(space_id="s", api_key="k", push_secret="p",
               base_url=f"http://127.0.0.1:{{server.server_port}}/api/v1")
app.on_job("noop")(lambda job: None)
handler = lambda_handler(app)

class Context:
    def get_remaining_time_in_millis(self):
        return 30_000

push = build_event("lambda_function_url", {{"jobId": "job_1", "name": "noop"}},
                   {{"authorization": "Bearer p"}})
answer = handler(push, Context())
assert json.loads(answer["body"])["status"] == "skipped", answer
after_push = {SWEEP_MODULE!r} in sys.modules
answer = handler(json.load(open({str(SCHEDULED)!r})), Context())
assert answer == {{"swept": []}}, answer  # nothing was pending
print(json.dumps([after_push, {SWEEP_MODULE!r} in sys.modules]))
server.shutdown()
"""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    ).stdout
    assert json.loads(out.splitlines()[-1]) == [False, True]


def test_without_the_lambda_extra_the_import_says_which_extra_to_install() -> None:
    """A bare ``pip install emit-push`` has neither Mangum nor Starlette: importing the
    adapter raises a ``MissingExtraError`` (an ``ImportError``) whose one line names the
    extra, whichever of the two is missing."""
    code = """
import json, sys
sys.modules[sys.argv[1]] = None  # as if not installed: importing it fails
try:
    import emit_push.adapters.aws_lambda
except ImportError as exc:
    print(json.dumps([type(exc).__name__, str(exc), exc.name]))
"""
    root = Path(__file__).resolve().parents[2]
    for missing in ("mangum", "starlette"):
        out = subprocess.run(
            [sys.executable, "-c", code, missing],
            capture_output=True, text=True, check=True, cwd=root,
        ).stdout  # fmt: skip
        assert json.loads(out) == [
            "MissingExtraError",
            f"emit-push: emit_push.adapters.aws_lambda needs {missing}, which is not installed:"
            " pip install 'emit-push[lambda]'",
            missing,
        ]
