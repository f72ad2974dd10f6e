"""``emit-push worker``, run as a real process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.cli.helpers import NO_SETTINGS, REPO, run
from tests.cli.processes import EMIT, Process
from tests.conftest import WORKER_KEY


def test_worker_runs_jobs_and_create_wait_follows_one(worker: Process, env: dict[str, str]) -> None:
    result = run("jobs", "create", "greet", "--payload", '{"who": "bob"}', "--wait", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    job_id = re.match(r"created (\S+) \(greet\)", result.stdout).group(1)  # type: ignore[union-attr]
    assert "\n  50% halfway\n" in result.stdout  # progress and logs as they come
    assert "\n  [info] hello bob\n" in result.stdout
    assert result.stdout.endswith('completed: {"greeting": "hello bob", "version": 1}\n')
    worker.wait_for(f"  greet {job_id} #0 completed")  # one line per finished job
    code, output = worker.stop(signal.SIGTERM)
    assert code == 0
    assert "emit-push worker stopped" in output


@pytest.mark.parametrize(
    ("app", "code", "message"),
    [
        (  # settings to give: a usage error
            "examples/fastapi_app.py:app",
            2,
            "emit-push: EmitPush needs space_id= (or EMIT_SPACE_ID) and api_key= (or EMIT_API_KEY)"
            " (or pass --space-id / --api-key / --base-url)",
        ),
        ("examples/no_such_app.py", 1, "emit-push: no such file: examples/no_such_app.py"),
        (
            "{tmp}/broken.py",
            1,
            "emit-push: cannot import {tmp}/broken.py: ZeroDivisionError: division by zero (broken.py, line 1)",
        ),
    ],
)
def test_worker_errors_are_one_line(tmp_path: Path, app: str, code: int, message: str) -> None:
    (tmp_path / "broken.py").write_text("1 / 0\n")
    env = {**os.environ, **NO_SETTINGS}
    result = subprocess.run(
        [*EMIT, "worker", app.format(tmp=tmp_path)], capture_output=True, text=True,
        timeout=60, cwd=REPO, env=env,
    )  # fmt: skip
    *warnings, error = result.stderr.strip().splitlines()
    assert (result.returncode, error) == (code, message.format(tmp=tmp_path))
    # Before it, at most the warnings of an app that builds its push endpoint at import.
    assert all(line.startswith("emit-push: ") for line in warnings), warnings
    assert "Traceback" not in result.stderr


TWO_JOBS = """
from emit_push import EmitPush, Job

app = EmitPush()


@app.on_job("greet")
async def greet(job: Job) -> str:
    return "hi"


@app.on_job("other")
async def other(job: Job) -> str:
    raise RuntimeError("not this one")
"""


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--count", "0"], "--count must be between 1 and 50, got 0"),
        (["--count", "51"], "--count must be between 1 and 50, got 51"),
        (["--poll-interval", "0"], "--poll-interval must be a number of seconds greater than 0"),
        (["--max-backoff", "nan"], "--max-backoff must be a number of seconds greater than 0"),
        (["--grace-period", "-1"], "--grace-period must be a number of seconds >= 0"),
        (
            ["--types", "greet", "nope"],
            "--types nope: the app has no handler for it (it has: greet, other)",
        ),
    ],
)
def test_worker_flags_are_checked(
    tmp_path: Path, env: dict[str, str], flags: list[str], message: str
) -> None:
    (tmp_path / "two.py").write_text(TWO_JOBS)
    result = run("worker", str(tmp_path / "two.py"), *flags, env=env)
    assert result.returncode == 2
    assert result.stderr.startswith(f"emit-push: {message}")
    assert len(result.stderr.splitlines()) == 1, result.stderr


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("emit_wrong", "emit-push: the API key was refused (401): check EMIT_API_KEY or --api-key"),
        (
            "emit_test_producer_key",  # a producer key: no jobs:poll
            "emit-push: Missing required scope: jobs:poll (403): use a key with that scope"
            " (the worker key that `emit-push server` and `emit-push dev` print has it)",
        ),
    ],
)
def test_worker_stops_when_its_key_is_refused(
    tmp_path: Path, env: dict[str, str], key: str, message: str
) -> None:
    (tmp_path / "two.py").write_text(TWO_JOBS)
    result = run("worker", str(tmp_path / "two.py"), env={**env, "EMIT_API_KEY": key})
    assert (result.returncode, result.stderr) == (1, message + "\n")
    assert result.stdout == "emit-push worker: greet, other (Ctrl-C stops)\n"


@pytest.mark.slow
def test_worker_takes_the_types_it_names_and_says_each_end(
    tmp_path: Path, env: dict[str, str], processes: list[Process]
) -> None:
    (tmp_path / "two.py").write_text(TWO_JOBS)
    other = run("jobs", "create", "other", "--max-retries", "0", "-q", env=env).stdout.strip()
    worker = Process(
        "worker", str(tmp_path / "two.py"), "--types", "greet", "--poll-interval", "0.05",
        env={**env, "EMIT_API_KEY": WORKER_KEY},
    )  # fmt: skip
    processes.append(worker)
    assert worker.wait_for("Ctrl-C stops").splitlines()[-1] == (
        "emit-push worker: greet (Ctrl-C stops)"
    )
    greet = run("jobs", "create", "greet", "-q", env=env).stdout.strip()
    worker.wait_for(f"  greet {greet} #0 completed")
    code, output = worker.stop(signal.SIGTERM)
    assert code == 0
    assert other not in output  # not among its types: left pending
    assert json.loads(run("jobs", "get", other, env=env).stdout)["status"] == "pending"


UNDECODABLE = """
import os

from emit_push import EmitPush, Job

app = EmitPush()


@app.on_job("report")
async def report(job: Job) -> str:
    name = os.fsdecode(b"report-\\xff.csv")  # a Linux file name that is not UTF-8
    if job.payload == "bad":
        raise RuntimeError("cannot open " + name)
    return "read " + name
"""


def test_worker_fails_a_job_whose_error_utf8_cannot_hold_and_goes_on(
    tmp_path: Path, env: dict[str, str], processes: list[Process]
) -> None:
    (tmp_path / "report.py").write_text(UNDECODABLE)
    bad = run("jobs", "create", "report", "--payload", '"bad"', "--max-retries", "0", "-q", env=env)
    good = run("jobs", "create", "report", "--payload", '"good"', "-q", env=env)
    bad_id, good_id = bad.stdout.strip(), good.stdout.strip()
    worker = Process(
        "worker", str(tmp_path / "report.py"), "--count", "2", "--poll-interval", "0.05",
        env={**env, "EMIT_API_KEY": WORKER_KEY},
    )  # fmt: skip
    processes.append(worker)
    error = "RuntimeError: cannot open report-\\xff.csv"  # the byte, written out
    worker.wait_for(f"  report {bad_id} #0 failed: {error}")
    worker.wait_for(f"  report {good_id} #0 completed")
    code, output = worker.stop(signal.SIGTERM)
    assert code == 0, output
    # The one traceback is the handler's, logged as it failed: no crash.
    told = f"raised {error}\nTraceback (most recent call last)"
    assert output.count("Traceback") == output.count(told) == 1, output
    failed = json.loads(run("jobs", "get", bad_id, env=env).stdout)
    assert (failed["status"], failed["result"]["error"]) == ("dead", error)
    done = json.loads(run("jobs", "get", good_id, env=env).stdout)
    assert (done["status"], done["result"]) == ("completed", "read report-\\xff.csv")


@pytest.mark.parametrize("setting", ["environment", "code"])
def test_worker_stops_with_the_api_v1_hint_on_a_base_url_without_it(
    tmp_path: Path, env: dict[str, str], setting: str
) -> None:
    """Every endpoint answers 404 there: said at start-up, once, with the fix."""
    root = env["EMIT_BASE_URL"].removesuffix("/api/v1")
    if setting == "environment":
        (tmp_path / "two.py").write_text(TWO_JOBS)
        changed = {"EMIT_BASE_URL": root}
    else:  # the app's code names it: the worker checks the URL the app's calls go to
        (tmp_path / "two.py").write_text(
            TWO_JOBS.replace("EmitPush()", f"EmitPush(base_url={root + '/'!r})")
        )
        changed = {}
    result = run("worker", str(tmp_path / "two.py"), env={**env, **changed}, timeout=30)
    assert (result.returncode, result.stderr) == (
        1,
        f"emit-push: {root} was not found (404): check that EMIT_BASE_URL ends in /api/v1"
        f" (it is {root})\n",
    )
