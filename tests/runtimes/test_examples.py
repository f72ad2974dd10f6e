"""The examples, each run by its real runtime against the local emit server on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import ADMIN_KEY, SPACE, LiveServer, ServeThread, make_config
from tests.harnesses.events import function_url_event
from tests.harnesses.gcf import FunctionsFramework
from tests.harnesses.lambda_runtime import LambdaRuntime
from tests.runtimes.conftest import AUTH, REPO, SECRET, app_env

EXAMPLES = REPO / "examples"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(make_config(db_path=str(tmp_path / "emit.sqlite3")))
    yield server
    server.stop()


@pytest.fixture
def admin(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.base_url, headers={"x-api-key": ADMIN_KEY}) as client:
        yield client


def load(path: Path, name: str) -> ModuleType:
    """A fresh copy of an example module (its app reads the environment at import)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def create(admin: httpx.Client, name: str, payload: Any) -> str:
    response = admin.post(f"/spaces/{SPACE}/jobs", json={"name": name, "payload": payload})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def stream_until_done(live: LiveServer, job_id: str) -> list[dict[str, Any]]:
    """Every event of the job's stream until it closes on the terminal one."""
    messages = []
    with connect(f"{live.ws_url}/realtime/{job_id}?token={ADMIN_KEY}", open_timeout=10) as ws:
        for raw in ws:  # ends when the server closes the stream (1000, after the last event)
            messages.append(json.loads(raw))
    return messages


def test_fastapi_example_on_uvicorn_with_the_server_pushing(
    live: LiveServer, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in app_env(live).items():
        monkeypatch.setenv(key, value)
    example = load(EXAMPLES / "fastapi_app.py", "example_fastapi_app")
    web = ServeThread(example.api)
    try:
        push = {"url": f"{web.url}/emit/", "headers": {"Authorization": f"Bearer {SECRET}"}}
        assert admin.put(f"/spaces/{SPACE}/push", json=push).status_code == 200
        assert httpx.get(f"{web.url}/emit/health").json() == {"status": "ok"}
        job_id = create(admin, "transcode", {"input_url": "s3://in.mov", "output_key": "out.mp4"})
        events = stream_until_done(live, job_id)
        thumb = create(admin, "thumbnail", {"image_url": "s3://cat.png"})
        stream_until_done(live, thumb)
    finally:
        web.stop()
    assert [e["type"] for e in events][-1] == "completed"
    job = admin.get(f"/jobs/{job_id}").json()
    assert job["result"] == {"outputUrl": "s3://final/out.mp4"}
    assert job["progress"]["percent"] == 100
    assert job["checkpoint"] == {"offsetSeconds": 120}
    assert {"kind": "codec", "value": "h264"} in [e["data"] for e in job["events"]]
    page = admin.get(f"/jobs/{job_id}/logs").json()["logs"]
    assert [(e["message"], e["metadata"]) for e in page] == [
        ("starting", {"attempt": 0}),
        ("done", {"output": "out.mp4"}),
    ]
    assert admin.get(f"/jobs/{thumb}").json()["result"] == {
        "thumbnail": "s3://cat.png",
        "width": 320,
    }


def test_lambda_example_under_awslambdaric_reuses_its_pool_when_warm(
    live: LiveServer, admin: httpx.Client
) -> None:
    with LambdaRuntime() as runtime:
        function = runtime.start_function(
            "app.handler", task_root=EXAMPLES / "aws_lambda", env=app_env(live)
        )
        answers = []
        jobs = []
        for image in ("a.png", "b.png"):
            job_id = create(admin, "thumbnail", {"image_url": f"s3://{image}"})
            jobs.append(job_id)
            body = {"type": "job.pending", "jobId": job_id, "name": "thumbnail"}
            answer = runtime.invoke(function_url_event(body, AUTH), deadline_in=20)
            answers.append((answer["statusCode"], json.loads(answer["body"])["status"]))
        assert function.invocations == 2  # one warm process served both
    assert answers == [(200, "completed"), (200, "completed")]
    assert admin.get(f"/jobs/{jobs[0]}").json()["result"] == {
        "thumbnails": ["s3://a.png@128", "s3://a.png@512"]
    }
    # One connection pool for the container: the warm invocation's API calls came over
    # connections the first one opened (same client addresses at the server), none new.
    first, second = (
        {peer for _, path, peer in live.requests if f"/jobs/{job_id}" in path} for job_id in jobs
    )
    assert second
    assert second <= first


def test_gcf_example_under_functions_framework(live: LiveServer, admin: httpx.Client) -> None:
    source = EXAMPLES / "gcp_functions" / "main.py"
    job_id = create(admin, "send-email", {"to": "ada@example.com", "subject": "hi"})
    with (
        FunctionsFramework(source, "emit_push_handler", env=app_env(live)) as ff,
        httpx.Client(base_url=ff.url, trust_env=False, timeout=30) as http,
    ):
        answer = http.post("/", json={"jobId": job_id, "name": "send-email"}, headers=AUTH)
    assert answer.status_code == 200
    assert answer.json()["status"] == "completed"
    job = admin.get(f"/jobs/{job_id}").json()
    assert job["result"] == {"status": "sent", "to": "ada@example.com"}
    assert [e["message"] for e in admin.get(f"/jobs/{job_id}/logs").json()["logs"]] == ["sending"]
