"""``emit-push watch``, run as a real process on 127.0.0.1, and its streams across restarts."""

from __future__ import annotations

import re
import signal
import socket
from pathlib import Path

import pytest

from tests.cli.helpers import SERVER_HINT, run
from tests.cli.processes import Process
from tests.conftest import WORKER_KEY, LiveServer


@pytest.mark.slow
def test_watch_follows_a_job_to_its_end(worker: Process, env: dict[str, str]) -> None:
    job_id = run(
        "jobs", "create", "greet", "--payload", '{"who": "cy"}', "-q", env=env
    ).stdout.strip()
    watched = run("watch", job_id, env=env)
    assert watched.returncode == 0, watched.stderr
    assert "hello cy" in watched.stdout  # the log line
    # The result as JSON, as `jobs create --wait` prints it.
    assert watched.stdout.splitlines()[-1] == 'completed: {"greeting": "hello cy", "version": 1}'
    unknown = run("watch", "01JNOSUCHJOB", env=env)
    assert (unknown.returncode, unknown.stderr.strip(), unknown.stdout) == (
        2,
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
    seen = watch.wait_for("greet: completed")
    assert "greet: created" in seen
    assert "greet: running" in seen
    code, output = watch.stop(signal.SIGINT)
    assert code == 0
    assert "Traceback" not in output
    assert job_id


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
            space.wait_for("gated: running")

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
        assert text.count("the server is restarting (close code 1012); reconnecting") == 1, text
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
