"""examples/flask_app.py on real WSGI servers on 127.0.0.1, against the local emit server.

Werkzeug's threaded server (what ``flask run`` serves with) runs the example in a thread
of the test; gunicorn runs it as in production, in forked worker processes. The local emit
server pushes to it as emit.run would, or the test POSTs a push itself to read the answer.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from werkzeug.serving import make_server

from tests.conftest import SPACE, WORKER_KEY, LiveServer
from tests.harnesses.gcf import free_port
from tests.waiting import wait_for

EXAMPLE = Path(__file__).with_name("flask_app.py")
SECRET = "flask-example-secret"
AUTH = {"Authorization": f"Bearer {SECRET}"}
FINISHED = ("completed", "failed", "dead", "killed")


def app_env(live: LiveServer) -> dict[str, str]:
    return {
        "EMIT_SPACE_ID": SPACE,
        "EMIT_API_KEY": WORKER_KEY,
        "EMIT_BASE_URL": live.base_url,
        "EMIT_PUSH_SECRET": SECRET,
    }


@pytest.fixture
def example(live: LiveServer, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A fresh copy of the example, configured for the local server as a deploy would be."""
    for key, value in app_env(live).items():
        monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location("example_flask_app", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def web(example: ModuleType) -> Iterator[str]:
    """The example's Flask app on Werkzeug's threaded WSGI server; its base URL."""
    server = make_server("127.0.0.1", 0, example.web, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="werkzeug", daemon=True
    )  # its poll interval: how long shutdown() waits
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(10)


def create(admin: httpx.Client, name: str, payload: Any) -> str:
    response = admin.post(f"/spaces/{SPACE}/jobs", json={"name": name, "payload": payload})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def finished(admin: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job once it has ended (or failed an attempt)."""

    def ended() -> dict[str, Any] | None:
        job: dict[str, Any] = admin.get(f"/jobs/{job_id}").json()
        return job if job["status"] in FINISHED else None

    job = wait_for(ended, message=f"job {job_id} to end")
    assert job is not None
    return job


def messages(admin: httpx.Client, job_id: str) -> list[str]:
    return [entry["message"] for entry in admin.get(f"/jobs/{job_id}/logs").json()["logs"]]


def push_to(admin: httpx.Client, url: str) -> None:
    """Point the space's pushes at ``url``, with the example's secret."""
    response = admin.put(f"/spaces/{SPACE}/push", json={"url": url, "headers": AUTH})
    assert response.status_code == 200, response.text


def test_pushed_jobs_run_to_completion_in_flask(web: str, admin: httpx.Client) -> None:
    push_to(admin, f"{web}/emit/")
    report = create(admin, "report", {"account": "acme", "month": "2025-01"})
    email = create(admin, "send-email", {"to": "ada@example.com", "subject": "hi"})

    job = finished(admin, report)  # the async handler
    assert (job["status"], job["result"]) == ("completed", {"url": "s3://reports/acme/2025-01.pdf"})
    assert job["progress"]["percent"] == 50
    assert messages(admin, report) == ["building"]

    job = finished(admin, email)  # the def handler, in a thread of its own
    assert (job["status"], job["result"]) == (
        "completed",
        {"status": "sent", "to": "ada@example.com"},
    )
    assert job["progress"]["percent"] == 50
    assert messages(admin, email) == ["sending"]


def test_the_view_answers_the_push_and_the_rest_is_flask(
    web: str, admin: httpx.Client, live: LiveServer
) -> None:
    report = create(admin, "report", {"account": "acme", "month": "2025-02"})
    push = {"type": "job.pending", "jobId": report, "name": "report", "spaceId": SPACE}
    with httpx.Client(base_url=web, trust_env=False, timeout=30) as http:
        refused = http.post("/emit/", json=push, headers={"Authorization": "Bearer wrong"})
        assert refused.status_code == 401
        assert live.api_calls(report) == []  # refused before any API call

        answer = http.post("/emit/", json=push, headers=AUTH)
        assert (answer.status_code, answer.json()) == (
            200,
            {"status": "completed", "jobId": report, "name": "report", "attemptNumber": 0},
        )
        again = http.post("/emit/", json=push, headers=AUTH)  # a duplicate push: one claim
        assert (again.status_code, again.json()["status"]) == (200, "skipped")

        assert http.get("/emit/").status_code == 405  # the view takes POST only
        assert http.get("/").json() == {"service": "example", "pushes": "/emit/"}
    assert admin.get(f"/jobs/{report}").json()["status"] == "completed"


@pytest.mark.slow
def test_gunicorn_workers_run_pushed_jobs(live: LiveServer, admin: httpx.Client) -> None:
    # Production's shape: the app imported once (--preload), then forked into workers with
    # threads; each worker starts its own event loop at its first push.
    settings = pytest.importorskip("gunicorn.config").KNOWN_SETTINGS  # with emit-push[gcp]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    env |= app_env(live) | {"NO_PROXY": "*", "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", "2", "--threads", "4", "--preload", "examples.flask_app:web"]
    if any(setting.name == "control_socket_disable" for setting in settings):
        command.append("--no-control-socket")  # gunicorn 25+ would open one in ~/.gunicorn
    cwd = EXAMPLE.parents[1]
    with subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as gunicorn:
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: _answers(url, gunicorn), message="gunicorn to answer")
            push_to(admin, f"{url}/emit/")
            jobs = [
                create(admin, "send-email", {"to": f"{n}@example.com", "subject": "hi"})
                for n in range(4)
            ]
            ended = [finished(admin, job_id) for job_id in jobs]
        finally:
            gunicorn.send_signal(signal.SIGINT)  # a quick stop: the test is over
            print(gunicorn.communicate(timeout=30)[0].decode(errors="replace"))  # on failure
    assert [job["status"] for job in ended] == ["completed"] * 4
    assert [job["result"]["to"] for job in ended] == [f"{n}@example.com" for n in range(4)]


def _answers(url: str, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"gunicorn exited {process.returncode}")
    try:
        return httpx.get(url, trust_env=False).status_code == 200
    except httpx.TransportError:
        return False
