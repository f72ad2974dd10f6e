"""``emit-push dev``, ``worker``, ``jobs`` and ``watch``, run as real processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import textwrap
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY, SPACE, WORKER_KEY, LiveServer
from tests.processes import EMIT, Process

APP = """
from emit_push import EmitPush, Job

app = EmitPush()


@app.on_job("greet")
async def greet(job: Job) -> dict:
    job.log.info("hello " + job.payload["who"])
    await job.progress(50, "halfway", sub_progress={"a": {"percent": 50}})
    return {"greeting": "hello " + job.payload["who"], "version": VERSION}
"""


def write_app(folder: Path, version: int) -> Path:
    path = folder / "greeter.py"
    path.write_text(textwrap.dedent(APP).replace("VERSION", str(version)))
    return path


@pytest.fixture
def env(live_server: LiveServer) -> dict[str, str]:
    return {
        **os.environ,
        "EMIT_BASE_URL": live_server.base_url,
        "EMIT_SPACE_ID": SPACE,
        "EMIT_API_KEY": ADMIN_KEY,
        "COLUMNS": "200",
    }


def run(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EMIT, *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture
def worker(tmp_path: Path, env: dict[str, str], processes: list[Process]) -> Process:
    app = write_app(tmp_path, 1)
    process = Process(
        "worker", str(app), "--poll-interval", "0.05", env={**env, "EMIT_API_KEY": WORKER_KEY}
    )
    processes.append(process)
    process.wait_for("emit-push worker: greet")
    return process


def test_jobs_create_get_list_logs_kill(env: dict[str, str]) -> None:
    created = run(
        "jobs",
        "create",
        "greet",
        "--payload",
        '{"who": "ada"}',
        "--max-retries",
        "5",
        "-q",
        env=env,
    )
    assert created.returncode == 0, created.stderr
    job_id = created.stdout.strip()
    assert re.fullmatch(r"[0-9A-Z]{26}", job_id)
    shown = json.loads(run("jobs", "get", job_id, env=env).stdout)
    assert (shown["name"], shown["payload"], shown["maxRetries"]) == ("greet", {"who": "ada"}, 5)
    listing = run("jobs", "list", "--status", "pending", env=env).stdout
    assert re.search(rf"{job_id}\s+greet\s+pending\s+0", listing)
    killed = run("jobs", "kill", job_id, "--reason", "testing", env=env)
    assert killed.stdout.strip() == f"killed {job_id}"
    assert json.loads(run("jobs", "get", job_id, env=env).stdout)["result"] == {"reason": "testing"}
    assert run("jobs", "logs", job_id, env=env).stdout == ""


def test_payload_from_a_file_and_bad_payloads(tmp_path: Path, env: dict[str, str]) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text('{"who": "file"}')
    job_id = run(
        "jobs", "create", "greet", "--payload", f"@{payload}", "-q", env=env
    ).stdout.strip()
    assert json.loads(run("jobs", "get", job_id, env=env).stdout)["payload"] == {"who": "file"}
    bad = run("jobs", "create", "greet", "--payload", "{nope", env=env)
    assert bad.returncode == 2
    assert bad.stderr.startswith("emit-push: --payload is not JSON")


@pytest.mark.parametrize(
    ("change", "args", "message"),
    [
        (
            {"EMIT_BASE_URL": "http://127.0.0.1:9/api/v1"},
            ["jobs", "list"],
            "cannot reach http://127.0.0.1:9/api/v1",
        ),
        ({"EMIT_API_KEY": "emit_wrong"}, ["jobs", "list"], "the API key was refused (401)"),
        (
            {"EMIT_API_KEY": WORKER_KEY},
            ["jobs", "create", "x"],
            "Missing required scope: jobs:create (403)",
        ),
        ({}, ["jobs", "get", "01JNOSUCHJOB"], "job 01JNOSUCHJOB does not exist"),
        ({"EMIT_SPACE_ID": ""}, ["jobs", "list"], "EMIT_SPACE_ID"),
    ],
)
def test_errors_are_one_clear_line(
    env: dict[str, str], change: dict[str, str], args: list[str], message: str
) -> None:
    result = run(*args, env={**env, **change})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("emit-push: ")
    assert message in lines[0]
    assert "emit_wrong" not in result.stderr


def test_worker_runs_jobs_and_create_wait_follows_one(worker: Process, env: dict[str, str]) -> None:
    result = run("jobs", "create", "greet", "--payload", '{"who": "bob"}', "--wait", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "completed:" in result.stdout
    assert '"greeting": "hello bob"' in result.stdout
    code, output = worker.stop(signal.SIGTERM)
    assert code == 0
    assert "emit-push worker stopped" in output


def test_watch_follows_a_job_to_its_end(worker: Process, env: dict[str, str]) -> None:
    job_id = run(
        "jobs", "create", "greet", "--payload", '{"who": "cy"}', "-q", env=env
    ).stdout.strip()
    watched = run("watch", job_id, env=env)
    assert watched.returncode == 0, watched.stderr
    assert "completed:" in watched.stdout
    assert "hello cy" in watched.stdout
    unknown = run("watch", "01JNOSUCHJOB", env=env)
    assert (unknown.returncode, unknown.stderr.strip()) == (
        2,
        "emit-push: job 01JNOSUCHJOB does not exist in this space",
    )


def test_watch_space_prints_events_until_ctrl_c(
    worker: Process, env: dict[str, str], processes: list[Process]
) -> None:
    watch = Process("watch", "--space", env=env)
    processes.append(watch)
    watch.wait_for("watching space")
    job_id = run(
        "jobs", "create", "greet", "--payload", '{"who": "dee"}', "-q", env=env
    ).stdout.strip()
    seen = watch.wait_for("greet: completed")
    assert "greet: created" in seen
    assert "greet: running" in seen
    code, output = watch.stop(signal.SIGINT)
    assert code == 0
    assert "Traceback" not in output
    assert job_id


def test_dev_serves_the_app_with_pushes_and_reloads(
    tmp_path: Path, processes: list[Process]
) -> None:
    app = write_app(tmp_path, 1)
    port = _free_port()
    dev = Process(
        "dev", str(app), "--reload", "--port", str(port), "--server-port", "0",
        "--db", str(tmp_path / "dev.sqlite3"), cwd=tmp_path,
    )  # fmt: skip
    processes.append(dev)
    banner = dev.wait_for("Press Ctrl-C")
    api = re.search(r"emit local server  (\S+)", banner).group(1)  # type: ignore[union-attr]
    space = re.search(r"space id\s+(\S+)", banner).group(1)  # type: ignore[union-attr]
    producer = re.search(r"producer key\s+(\S+)", banner).group(1)  # type: ignore[union-attr]
    assert f"EMIT_API_KEY={producer}" in banner
    env = {**os.environ, "EMIT_BASE_URL": api, "EMIT_SPACE_ID": space, "EMIT_API_KEY": producer}
    first = run("jobs", "create", "greet", "--payload", '{"who": "dev"}', "--wait", env=env)
    assert '"version": 1' in first.stdout, first.stdout + first.stderr
    write_app(tmp_path, 2)  # a code change: the app restarts with it
    dev.wait_for("restarting the app")
    second = run("jobs", "create", "greet", "--payload", '{"who": "dev"}', "--wait", env=env)
    assert '"version": 2' in second.stdout, second.stdout + second.stderr
    with httpx.Client(base_url=api, headers={"x-api-key": producer}) as http:
        push = http.get(f"/spaces/{space}/push").json()
    assert push["url"] == f"http://127.0.0.1:{port}/"
    assert push["headers"]["Authorization"].startswith("Bearer ")
    code, output = dev.stop(signal.SIGINT)
    assert code == 0
    assert "Traceback" not in output


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
