"""The AWS Lambda adapter in-process: every event shape, from fresh threads, on one loop."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from emit_push import EmitPush
from emit_push.adapters.aws_lambda import lambda_handler
from tests.conftest import SPACE, WORKER_KEY, LiveServer
from tests.harnesses.events import SHAPES, build_event


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
