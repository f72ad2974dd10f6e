"""``emit-push jobs``, run as a real process on 127.0.0.1."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest

from tests.cli.helpers import run
from tests.cli.processes import Process


@pytest.mark.slow
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


@pytest.mark.slow
def test_wait_says_once_that_nothing_took_the_job(
    env: dict[str, str], processes: list[Process]
) -> None:
    waiting = Process("jobs", "create", "nobody-takes-this", "--wait", env=env)
    processes.append(waiting)
    waiting.wait_for("created")
    said = waiting.wait_for("waiting: no worker has taken the job yet")
    assert said.splitlines()[-1].startswith("emit-push: waiting: no worker has taken the job yet")
    assert waiting.stop(signal.SIGINT)[0] == 130
