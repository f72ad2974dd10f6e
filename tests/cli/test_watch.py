"""``emit-push watch``, run as a real process on 127.0.0.1, and its streams across restarts."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
from pathlib import Path

import httpx
import pytest

from tests.cli.helpers import SERVER_HINT, run
from tests.cli.processes import Process
from tests.conftest import ADMIN_KEY, SPACE, WORKER_KEY, LiveServer, make_config
from tests.receiver import Receiver
from tests.waiting import wait_for


@pytest.mark.slow
def test_watch_follows_a_job_to_its_end(worker: Process, env: dict[str, str]) -> None:
    job_id = run(
        "jobs", "create", "greet", "--payload", '{"who": "cy"}', "-q", env=env
    ).stdout.strip()
    watched = run("watch", job_id, env=env)
    assert watched.returncode == 0, watched.stderr
    assert "hello cy" in watched.stdout  # the log line
    # The worker's terminal shows the job's lines too (INFO, with no logging configured).
    worker.wait_for(f"[greet {job_id} #0] hello cy")
    # The result as JSON, as `jobs create --wait` prints it.
    assert watched.stdout.splitlines()[-1] == 'completed: {"greeting": "hello cy", "version": 1}'
    unknown = run("watch", "01JNOSUCHJOB", env=env)
    assert (unknown.returncode, unknown.stderr.strip(), unknown.stdout) == (
        1,
        "emit-push: job 01JNOSUCHJOB does not exist in this space (404)",
        "",
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
    seen = watch.wait_for(f"greet {job_id} completed")
    for kind in ("created", "running", "progress 50% halfway", "completed"):
        assert re.search(rf"^\d\d:\d\d:\d\d greet {job_id} {kind}$", seen, re.M), (kind, seen)
    code, output = watch.stop(signal.SIGINT)
    assert code == 0
    assert "Traceback" not in output


@pytest.mark.slow
def test_watch_says_once_that_nothing_took_the_job(
    env: dict[str, str], processes: list[Process]
) -> None:
    job_id = run("jobs", "create", "nobody-takes-this", "-q", env=env).stdout.strip()
    watch = Process("watch", job_id, env=env)
    processes.append(watch)
    watch.wait_for("no worker has taken the job yet (is `emit-push dev` or `emit-push worker`")
    assert run("jobs", "kill", job_id, env=env).returncode == 0
    code, output = watch.finish()
    assert code == 1, output
    assert output.count("no worker has taken the job yet") == 1, output
    assert output.splitlines()[-1] == 'killed: {"reason": null}'


FAILING = """
from emit_push import EmitPush, Job

app = EmitPush()


@app.on_job("boom")
async def boom(job: Job) -> dict:
    raise RuntimeError("database is on fire\\nand the backup too")
"""


@pytest.mark.slow
def test_watch_space_says_which_job_failed_when_and_why(
    tmp_path: Path, env: dict[str, str], processes: list[Process]
) -> None:
    (tmp_path / "failing.py").write_text(FAILING)
    worker = Process(
        "worker", str(tmp_path / "failing.py"), "--poll-interval", "0.05",
        env={**env, "EMIT_API_KEY": WORKER_KEY},
    )  # fmt: skip
    watch = Process("watch", "--space", env=env)
    processes.extend([worker, watch])
    worker.wait_for("emit-push worker: boom")
    watch.wait_for("watching space")
    job_id = run("jobs", "create", "boom", "--max-retries", "1", "-q", env=env).stdout.strip()
    seen = watch.wait_for(f"boom {job_id} failed: RuntimeError: database is on fire (no retries")
    failures = [line for line in seen.splitlines() if " failed: " in line]
    assert len(failures) == 2, seen
    error = "RuntimeError: database is on fire"
    assert re.fullmatch(
        rf"\d\d:\d\d:\d\d boom {job_id} failed: {error} \(retrying as #1\)", failures[0]
    )
    assert re.fullmatch(
        rf"\d\d:\d\d:\d\d boom {job_id} failed: {error} \(no retries left: dead\)", failures[1]
    )
    code, output = watch.stop(signal.SIGINT)
    assert code == 0, output
    # Watched once it is over: its attempts are read from its history.
    watched = run("watch", job_id, env=env)
    assert watched.returncode == 1, watched.stderr
    assert f"attempt #0 failed: {error} (retrying as #1)" in watched.stdout, watched.stdout
    # Following one job: each failed attempt is a line, its traceback kept under its entry.
    waited = run("jobs", "create", "boom", "--max-retries", "1", "--wait", env=env)
    assert waited.returncode == 1, waited.stderr
    lines = waited.stdout.splitlines()
    assert f"  attempt #0 failed: {error} (retrying as #1)" in lines, waited.stdout
    assert lines[-1].startswith('dead: {"error": "RuntimeError: database is on fire\\nand')
    traceback = lines.index("  [error] Traceback (most recent call last):")
    assert lines[traceback + 1].startswith(" " * 10 + "  File "), waited.stdout


@pytest.mark.slow
def test_watch_shows_each_failed_push_as_it_fails(tmp_path: Path, processes: list[Process]) -> None:
    """A push the app refuses is told by `watch JOB` (also one that failed before it
    began: read from the job's history) and `watch --space`, with its cause and fix."""
    # No automatic re-push: each attempt below is started by hand, so the order is known.
    server = LiveServer(make_config(db_path=str(tmp_path / "emit.sqlite3"), push_retry_delays=()))
    receiver = Receiver([401, 307])  # then 200
    admin = httpx.Client(base_url=server.base_url, headers={"x-api-key": ADMIN_KEY})
    env = {**os.environ, "EMIT_BASE_URL": server.base_url, "EMIT_SPACE_ID": SPACE,
           "EMIT_API_KEY": ADMIN_KEY, "COLUMNS": "400"}  # fmt: skip
    url = f"{receiver.url}/emit"
    try:
        admin.put(f"/spaces/{SPACE}/push", json={"url": url}).raise_for_status()
        space = Process("watch", "--space", env=env)
        processes.append(space)
        space.wait_for("watching space")
        job_id = run("jobs", "create", "greet", "-q", env=env).stdout.strip()
        wait_for(
            lambda: any(e["type"] == "push_failed" for e in admin.get(f"/jobs/{job_id}").json()["events"]),
            message="the first push recorded as failed",
        )  # fmt: skip
        watch = Process("watch", job_id, env=env)
        processes.append(watch)
        secret = (
            "the app refused the push secret: the space's push headers must carry the app's"
            " EMIT_PUSH_SECRET (Authorization: Bearer <secret>, or its header)"
        )
        said = watch.wait_for(f"push to {url} failed: HTTP 401; {secret}")  # from the history
        repush = {"jobIds": [job_id]}
        admin.post(f"/spaces/{SPACE}/repush", json=repush).raise_for_status()
        said = watch.wait_for(f"push to {url} failed: HTTP 307; a redirect")  # streamed
        admin.post(f"/spaces/{SPACE}/repush", json=repush).raise_for_status()
        space.wait_for(f"greet {job_id} pushed (HTTP 200)")
        assert run("jobs", "kill", job_id, env=env).returncode == 0
        code, said = watch.finish()
        assert code == 1, said
        assert said.splitlines()[-1] == 'killed: {"reason": null}', said
        assert said.count("failed: HTTP 401") == said.count("failed: HTTP 307") == 1, said
        code, seen = space.stop(signal.SIGINT)
        assert code == 0, seen
        lines = [line.split(" ", 1)[1] for line in seen.splitlines() if job_id in line]
        last = "(no more retries: once fixed, Re-push it from the dashboard)"  # no retries here
        assert lines == [
            f"greet {job_id} created",
            f"greet {job_id} push to {url} failed: HTTP 401; {secret} {last}",
            f"greet {job_id} push to {url} failed: HTTP 307; a redirect: an app mounted at /path"
            " takes pushes at /path/ (mind the trailing slash); set the push URL to where the"
            f" app answers {last}",
            f"greet {job_id} pushed (HTTP 200)",
            f"greet {job_id} killed",
        ], seen
    finally:
        admin.close()
        receiver.stop()
        server.stop()


def test_space_lines_from_recorded_events() -> None:
    from datetime import UTC, datetime

    from emit_push._realtime.events import parse_event
    from emit_push.cli.watch import space_line

    at = "2025-02-24T10:30:04.000Z"
    local = datetime(2025, 2, 24, 10, 30, 4, tzinfo=UTC).astimezone().strftime("%H:%M:%S")
    job = {"jobId": "01JAAA", "jobName": "thumbnail", "timestamp": at, "seq": 3}
    cases = [
        ({"type": "created", "status": "pending"}, "created"),
        ({"type": "pending", "status": "pending", "data": {"reason": "timeout"}}, "pending (timeout)"),
        ({"type": "progress", "data": {"percent": 12.5, "message": "resizing"}}, "progress 12.5% resizing"),
        (
            {"type": "retried", "status": "pending",
             "data": {"error": "RuntimeError: database is on fire\nmore", "attemptNumber": 1}},
            "failed: RuntimeError: database is on fire (retrying as #1)",
        ),
        ({"type": "dead", "status": "dead", "data": {"error": "timeout"}}, "failed: timeout (no retries left: dead)"),
        ({"type": "killed", "status": "killed", "data": {"reason": "testing"}}, "killed: testing"),
        (
            {"type": "push_failed", "data": {"url": "http://127.0.0.1:8788/emit", "statusCode": 307,
                                             "error": "HTTP 307", "willRetry": True}},
            "push to http://127.0.0.1:8788/emit failed: HTTP 307; a redirect: an app mounted at"
            " /path takes pushes at /path/ (mind the trailing slash) (it will be sent again)",
        ),
        ({"type": "push_sent", "data": {"statusCode": 204}}, "pushed (HTTP 204)"),
        ({"type": "logs", "data": {"fromSeq": 3, "toSeq": 5, "count": 3}}, "logs +3"),
    ]  # fmt: skip
    for message, said in cases:
        event = parse_event(json.dumps({**job, **message}))
        assert event is not None
        assert space_line(event) == f"{local} thumbnail 01JAAA {said}"


def test_attempt_lines_from_recorded_events() -> None:
    from emit_push._realtime.events import parse_event
    from emit_push.cli.common import continued
    from emit_push.cli.notes import attempt_failed

    retried = {"type": "retried", "data": {"error": "KeyError: 'x'\nTraceback", "attemptNumber": 2}}
    event = parse_event(json.dumps(retried))
    assert event is not None
    assert attempt_failed(event) == "attempt #1 failed: KeyError: 'x' (retrying as #2)"
    event = parse_event(json.dumps({"type": "retried", "data": None}))
    assert event is not None
    assert attempt_failed(event) == "an attempt failed: (no error given) (retrying)"
    assert continued("Traceback\n  File x\nError", 4) == "Traceback\n      File x\n    Error"


GATED = """
import asyncio
import socket

from emit_push import EmitPush, Job

app = EmitPush()


@app.on_job("gated")
async def gated(job: Job) -> dict:
    job.log.info("at the gate")
    await job.progress(10, "at the gate")
    gate = socket.create_connection(("127.0.0.1", PORT))
    await asyncio.to_thread(gate.recv, 1)  # until the test opens the gate
    gate.close()
    return {"through": True}
"""


@pytest.mark.slow
def test_streams_ride_out_a_server_restart(
    tmp_path: Path, live_server: LiveServer, env: dict[str, str], processes: list[Process]
) -> None:
    """--wait, logs --follow, watch JOB_ID and watch --space, across a restart (1012)."""
    with socket.create_server(("127.0.0.1", 0)) as gate:
        gate.settimeout(20)
        app = tmp_path / "gated.py"
        app.write_text(GATED.replace("PORT", str(gate.getsockname()[1])))
        worker = Process(
            "worker", str(app), "--poll-interval", "0.05", env={**env, "EMIT_API_KEY": WORKER_KEY}
        )
        space = Process("watch", "--space", env=env)
        processes.extend([worker, space])
        space.wait_for("watching space")
        waiting = Process("jobs", "create", "gated", "--wait", env=env)
        processes.append(waiting)
        job_id = re.search(r"created (\S+)", waiting.wait_for("created")).group(1)  # type: ignore[union-attr]
        held, _ = gate.accept()  # the job runs, and waits at the gate
        with held:
            following = Process("jobs", "logs", job_id, "--follow", env=env)
            watching = Process("watch", job_id, env=env)
            processes.extend([following, watching])
            for process in (waiting, following):  # each stream is open: it printed its init
                process.wait_for("10% at the gate")
            watching.wait_for("at the gate")  # the log line, read when its stream opened
            space.wait_for(f"gated {job_id} running")

            live_server.restart()  # the streams close with 1012, and reconnect
            held.sendall(b"!")
        for process in (waiting, watching):
            process.wait_for('completed: {"through": true}')
        # Whether the job ended before or after the space stream was back, it says so.
        space.wait_for("events in between missed")
        ended = [process.finish() for process in (waiting, following, watching)]
        ended.append(space.stop(signal.SIGINT))
    for code, text in ended:
        assert code == 0, text
        assert "Traceback" not in text, text
        # The restart was noticed and said, once per stream.
        stopped = "the server stopped (close code 1012); reconnecting when it is back"
        assert text.count(stopped) == 1, text
        assert text.count("emit-push: reconnected") == 1, text


def test_watch_space_waits_for_a_server_that_is_down(
    live_server: LiveServer, env: dict[str, str], processes: list[Process]
) -> None:
    live_server.stop()
    watch = Process("watch", "--space", env=env)
    processes.append(watch)
    said = watch.wait_for(SERVER_HINT)  # at once, with the fix...
    assert said.startswith(f"emit-push: cannot reach {live_server.base_url}: ")
    assert said.rstrip().endswith("(retrying; Ctrl-C stops)")
    live_server.start()  # ...and it goes on when the server comes
    watch.wait_for("watching space")
    code, output = watch.stop(signal.SIGINT)
    assert code == 0
    assert output.count("cannot reach") == 1  # the retries are quiet
    assert "Traceback" not in output
