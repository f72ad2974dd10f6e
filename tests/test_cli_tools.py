"""``emit-push dev``, ``worker``, ``jobs`` and ``watch``, run as real processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
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
    who = job.payload.get("who", "world")
    job.log.info("hello " + who)
    await job.progress(50, "halfway", sub_progress={"a": {"percent": 50}})
    return {"greeting": "hello " + who, "version": VERSION}
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


DEAD = "http://127.0.0.1:9/api/v1"  # the discard port: nothing listens there
SERVER_HINT = "Is the server running? Start it with `emit-push server`"
PRODUCER_HINT = "the producer key that `emit-push server` and `emit-push dev` print has it"


@pytest.mark.parametrize(
    ("change", "args", "message"),
    [
        ({"EMIT_BASE_URL": DEAD}, ["jobs", "list"], f"cannot reach {DEAD}"),
        ({"EMIT_BASE_URL": DEAD}, ["jobs", "list"], SERVER_HINT),
        # A job stream: no leftover progress bar, and the same fix.
        ({"EMIT_BASE_URL": DEAD}, ["watch", "01JNOSUCHJOB"], f"cannot reach {DEAD}"),
        ({"EMIT_BASE_URL": DEAD}, ["watch", "01JNOSUCHJOB"], SERVER_HINT),
        ({"EMIT_API_KEY": "emit_wrong"}, ["jobs", "list"], "the API key was refused (401)"),
        ({"EMIT_API_KEY": "emit_wrong"}, ["watch", "--space"], "the API key was refused (401)"),
        (
            {"EMIT_API_KEY": WORKER_KEY},
            ["jobs", "create", "x"],
            f"Missing required scope: jobs:create (403): use a key with that scope ({PRODUCER_HINT})",
        ),
        (
            {"EMIT_API_KEY": WORKER_KEY},
            ["jobs", "kill", "01JNOSUCHJOB"],
            f"Missing required scope: jobs:kill (403): use a key with that scope ({PRODUCER_HINT})",
        ),
        (
            {},
            ["jobs", "get", "01JNOSUCHJOB"],
            "job 01JNOSUCHJOB does not exist in this space (404)",
        ),
        # A base URL without /api/v1: every path is unknown there; the URL is the fix.
        (
            {"EMIT_BASE_URL": "{root}"},
            ["jobs", "list"],
            "{root} was not found (404): check that EMIT_BASE_URL ends in /api/v1 (it is {root})",
        ),
        (
            {"EMIT_BASE_URL": "{root}/"},
            ["jobs", "get", "01JNOSUCHJOB"],
            "job 01JNOSUCHJOB was not found (404): check that EMIT_BASE_URL ends in /api/v1",
        ),
        (
            {"EMIT_BASE_URL": "{root}"},
            ["watch", "01JNOSUCHJOB"],
            "check that EMIT_BASE_URL ends in /api/v1 (it is {root})",
        ),
        ({"EMIT_SPACE_ID": ""}, ["jobs", "list"], "EMIT_SPACE_ID"),
    ],
)
def test_errors_are_one_clear_line(
    env: dict[str, str], change: dict[str, str], args: list[str], message: str
) -> None:
    root = env["EMIT_BASE_URL"].removesuffix("/api/v1")
    result = run(*args, env={**env, **{k: v.format(root=root) for k, v in change.items()}})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("emit-push: ")
    assert message.format(root=root) in lines[0]
    assert "emit_wrong" not in result.stderr
    assert result.stdout == ""  # nothing half-drawn before the error


def test_worker_runs_jobs_and_create_wait_follows_one(worker: Process, env: dict[str, str]) -> None:
    result = run("jobs", "create", "greet", "--payload", '{"who": "bob"}', "--wait", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    job_id = re.match(r"created (\S+) \(greet\)", result.stdout).group(1)  # type: ignore[union-attr]
    assert "\n  50% halfway\n" in result.stdout  # progress and logs as they come
    assert "\n  [info] hello bob\n" in result.stdout
    assert result.stdout.endswith('completed: {"greeting": "hello bob", "version": 1}\n')
    worker.wait_for(f"  greet {job_id}: completed")  # one line per finished job
    code, output = worker.stop(signal.SIGTERM)
    assert code == 0
    assert "emit-push worker stopped" in output


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


# -- emit-push dev ----------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
NO_SETTINGS = {"EMIT_BASE_URL": "", "EMIT_SPACE_ID": "", "EMIT_API_KEY": "", "EMIT_PUSH_SECRET": ""}


class Dev:
    """``emit-push dev`` on free ports, and what its banner says."""

    def __init__(
        self, processes: list[Process], app: str, *flags: str, cwd: Path, db: Path
    ) -> None:
        self.process = Process(
            "dev", app, *flags, "--port", "0", "--server-port", "0", "--db", str(db),
            env=NO_SETTINGS, cwd=cwd,
        )  # fmt: skip
        processes.append(self.process)
        self.pid = self.wait_ready()
        banner = self.process.wait_for("Press Ctrl-C")
        self.banner = banner

        def field(pattern: str) -> str:
            return re.search(pattern, banner).group(1)  # type: ignore[union-attr]

        self.api = field(r"emit local server  (\S+)")
        self.app_url = field(r"your app's pushes  (\S+)")
        self.space = field(r"space id\s+(\S+)")
        self.producer = field(r"producer key\s+(\S+)")
        assert f"EMIT_API_KEY={self.producer}" in banner
        self.env = {
            **os.environ,
            "EMIT_BASE_URL": self.api,
            "EMIT_SPACE_ID": self.space,
            "EMIT_API_KEY": self.producer,
        }

    def wait_ready(self) -> int:
        """The pid of the app, once ``dev`` says it is ready."""
        line = self.process.wait_for("app ready").splitlines()[-1]
        return int(re.search(r"pid (\d+)", line).group(1))  # type: ignore[union-attr]

    def job(self, name: str, payload: str) -> subprocess.CompletedProcess[str]:
        return run("jobs", "create", name, "--payload", payload, "--wait", env=self.env)


def gated_app(folder: Path, version: int, gate: socket.socket) -> None:
    """Version ``version`` of the app, whose import waits until the test opens ``gate``.

    The test's ``gate.accept()`` returns once the new app is importing (so the old one
    has stopped), and the import goes on when the test sends a byte: the app is down in
    between, for as long as the test needs, without a sleep.
    """
    port = gate.getsockname()[1]
    wait = f"import socket\nsocket.create_connection(('127.0.0.1', {port})).recv(1)\n"
    path = write_app(folder, version)
    path.write_text(wait + path.read_text())


def test_dev_serves_the_readme_example_with_no_settings(
    tmp_path: Path, processes: list[Process]
) -> None:
    # The README's command. The example builds app.asgi() at import, which needs settings:
    # only the app's process, which dev gives them to, may import it.
    dev = Dev(
        processes, "examples/fastapi_app.py:app", "--reload", cwd=REPO, db=tmp_path / "dev.db"
    )
    assert f"reloading on changes in {REPO / 'examples'}" in dev.banner
    done = dev.job("thumbnail", '{"image_url": "https://x/cat.png"}')
    assert "completed:" in done.stdout, done.stdout + done.stderr
    assert '"width": 320' in done.stdout
    code, output = dev.process.stop(signal.SIGINT)
    assert code == 0
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "def broken(:\n",
            "emit-push: cannot import app.py: SyntaxError: invalid syntax (app.py, line 1)",
        ),
        (
            "import no_such_module_here\n",
            "emit-push: cannot import app.py: ModuleNotFoundError: No module named 'no_such_module_here' (app.py, line 1)",
        ),
        (
            "x = 1\nraise RuntimeError('no\\ndatabase')\n",
            "emit-push: cannot import app.py: RuntimeError: no database (app.py, line 2)",
        ),
        (
            "from emit_push import EmitPush\napp = EmitPush(max_runtime=-1)\n",
            "emit-push: max_runtime must be a positive number of seconds",
        ),
        ("x = 1\n", "emit-push: app.py defines no EmitPush app and no @on_job handler"),
    ],
)
def test_dev_exits_2_with_the_apps_error_on_one_line(
    tmp_path: Path, source: str, message: str
) -> None:
    (tmp_path / "app.py").write_text(source)
    flags = ["--port", "0", "--server-port", "0", "--db", str(tmp_path / "dev.db")]
    result = subprocess.run(
        [*EMIT, "dev", "app.py", *flags], capture_output=True, text=True, timeout=60,
        cwd=tmp_path, env={**os.environ, **NO_SETTINGS},
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message), lines[0]
    assert "Traceback" not in result.stdout


@pytest.mark.parametrize(
    ("app", "message"),
    [
        (
            "examples/fastapi_app.py:app",
            "emit-push: EmitPush needs space_id= (or EMIT_SPACE_ID) and api_key= (or EMIT_API_KEY)"
            " (or pass --space-id / --api-key / --base-url)",
        ),
        ("examples/no_such_app.py", "emit-push: no such file: examples/no_such_app.py"),
        (
            "{tmp}/broken.py",
            "emit-push: cannot import {tmp}/broken.py: ZeroDivisionError: division by zero (broken.py, line 1)",
        ),
    ],
)
def test_worker_errors_are_one_line(tmp_path: Path, app: str, message: str) -> None:
    (tmp_path / "broken.py").write_text("1 / 0\n")
    env = {**os.environ, **NO_SETTINGS}
    result = subprocess.run(
        [*EMIT, "worker", app.format(tmp=tmp_path)], capture_output=True, text=True,
        timeout=60, cwd=REPO, env=env,
    )  # fmt: skip
    assert (result.returncode, result.stderr.strip()) == (2, message.format(tmp=tmp_path))


def test_dev_reloads_on_changes_in_the_app_folder_from_before_the_banner(
    tmp_path: Path, processes: list[Process]
) -> None:
    folder, elsewhere = tmp_path / "app", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    app = write_app(folder, 1)
    dev = Dev(processes, str(app), "--reload", cwd=elsewhere, db=tmp_path / "dev.db")
    write_app(folder, 2)  # at once: the watch began before the banner, on the app's folder
    dev.wait_ready()
    done = dev.job("greet", '{"who": "dev"}')
    assert '"version": 2' in done.stdout, done.stdout + done.stderr
    # The banner's command, pasted into a fresh shell, creates a job the app takes.
    pasted = dev.banner.split("Create a job (in another shell):\n")[1].split("\n\n")[0]
    assert pasted.endswith(" -m emit_push.cli jobs create greet --payload '{}' --wait")
    shell = subprocess.run(
        ["sh", "-c", pasted], capture_output=True, text=True, timeout=60, cwd=elsewhere,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert shell.returncode == 0, shell.stdout + shell.stderr
    assert shell.stdout.endswith('completed: {"greeting": "hello world", "version": 2}\n')
    assert f"reloading on changes in {folder}" in dev.banner
    with httpx.Client(base_url=dev.api, headers={"x-api-key": dev.producer}) as http:
        push = http.get(f"/spaces/{dev.space}/push").json()
    assert push["url"] == dev.app_url
    assert push["headers"]["Authorization"].startswith("Bearer ")
    code, output = dev.process.stop(signal.SIGINT)
    assert code == 0
    assert "Traceback" not in output


def test_dev_reload_survives_a_broken_save(tmp_path: Path, processes: list[Process]) -> None:
    app = write_app(tmp_path, 1)
    dev = Dev(processes, str(app), "--reload", cwd=tmp_path, db=tmp_path / "dev.db")
    app.write_text(app.read_text() + "\ndef broken(:\n")
    failed = dev.process.wait_for("save a fix").splitlines()[-1]
    assert failed == (
        f"emit-push: cannot import {app}: SyntaxError: invalid syntax (greeter.py, line 14)"
        " (save a fix to restart the app)"
    )
    write_app(tmp_path, 3)  # fixed: the app comes back
    dev.wait_ready()
    done = dev.job("greet", '{"who": "dev"}')
    assert '"version": 3' in done.stdout, done.stdout + done.stderr
    code, output = dev.process.stop(signal.SIGINT)
    assert code == 0
    assert "Traceback" not in output


def test_dev_pushes_again_the_jobs_created_while_the_app_restarts(
    tmp_path: Path, processes: list[Process]
) -> None:
    app = write_app(tmp_path, 1)
    dev = Dev(processes, str(app), "--reload", cwd=tmp_path, db=tmp_path / "dev.db")
    watch = Process("watch", "--space", env=dev.env)
    processes.append(watch)
    watch.wait_for("watching space")
    with socket.create_server(("127.0.0.1", 0)) as gate:
        gate.settimeout(20)
        gated_app(tmp_path, 2, gate)
        held, _ = gate.accept()  # the new app is importing; the old one is gone
        with held:
            job_id = run(
                "jobs", "create", "greet", "--payload", '{"who": "late"}', "-q", env=dev.env
            ).stdout.strip()
            # No app listened: the push is lost (push_failed is in the job's history; the
            # stream does not carry it, so the history is read until it shows).
            until(lambda: "push_failed" in events_of(job_id, dev.env), timeout=20)
            held.sendall(b"!")
            dev.wait_ready()  # and dev pushes the pending job again
    watched = run("watch", job_id, env=dev.env, timeout=30)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert 'completed: {"greeting": "hello late", "version": 2}' in watched.stdout


def events_of(job_id: str, env: dict[str, str]) -> list[str]:
    return [e["type"] for e in json.loads(run("jobs", "get", job_id, env=env).stdout)["events"]]


def until(condition: Callable[[], bool], timeout: float) -> None:
    """Check ``condition`` until it holds (for what no stream or output announces)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_banner_names_this_emit_push(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from emit_push._cli_dev import executable

    script = tmp_path / "bin" / "emit-push"  # a console script, e.g. .venv/bin/emit-push
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "argv", [str(script), "dev", "app.py"])
    assert executable() == str(script)
    monkeypatch.setattr(sys, "argv", [str(REPO / "emit_push" / "cli.py"), "dev"])  # python -m
    assert executable() == f"{sys.executable} -m emit_push.cli"


def test_the_banner_prefers_a_job_that_takes_an_empty_payload() -> None:
    from pydantic import BaseModel

    from emit_push import EmitPush
    from emit_push._cli_dev_app import example_job

    class Needs(BaseModel):
        url: str

    class Defaults(BaseModel):
        width: int = 320

    app = EmitPush()
    app.on_job("a-needs-a-url", payload=Needs)(lambda job: None)
    assert example_job(app) == "a-needs-a-url"  # no better one: still a name it takes
    app.on_job("b-has-defaults", payload=Defaults)(lambda job: None)
    app.on_job("c-untyped")(lambda job: None)
    assert example_job(app) == "b-has-defaults"  # `--payload '{}'` works for it


def test_dev_names_its_flag_for_a_busy_server_port(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP).replace("VERSION", "1"))
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        result = subprocess.run(
            [*EMIT, "dev", "app.py", "--port", "0", "--server-port", port, "--db",
             str(tmp_path / "dev.db")],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
            env={**os.environ, **NO_SETTINGS},
        )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == (
        f"emit-push: cannot listen on 127.0.0.1:{port}: Address already in use"
        " (another server running? pick another port with --server-port)\n"
    )


@pytest.mark.parametrize("when", ["serving", "restarting"])
def test_sigterm_stops_dev_and_its_app(tmp_path: Path, processes: list[Process], when: str) -> None:
    app = write_app(tmp_path, 1)
    dev = Dev(processes, str(app), "--reload", cwd=tmp_path, db=tmp_path / "dev.db")
    with socket.create_server(("127.0.0.1", 0)) as gate:
        gate.settimeout(20)
        if when == "restarting":  # the reviewer's case: SIGTERM while the app restarts
            gated_app(tmp_path, 2, gate)
            held, _ = gate.accept()
        code, output = dev.process.stop(signal.SIGTERM)
        assert code == 0, output
        assert "emit-push dev stopped" in output
        if when == "restarting":
            with held:
                assert held.recv(1) == b""  # the importing app is gone: its socket closed
    with pytest.raises(ProcessLookupError):
        os.kill(dev.pid, 0)  # stopped and reaped by dev
    with pytest.raises(httpx.ConnectError):
        httpx.get(dev.app_url + "health", timeout=5)


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs pidfd_open (Linux)")
def test_the_app_stops_when_dev_is_killed(tmp_path: Path, processes: list[Process]) -> None:
    app = write_app(tmp_path, 1)
    dev = Dev(processes, str(app), cwd=tmp_path, db=tmp_path / "dev.db")
    pidfd = os.pidfd_open(dev.pid)
    try:
        dev.process.proc.kill()  # no chance to stop its app: the app notices by itself
        readable, _, _ = select.select([pidfd], [], [], 20)
        assert readable, "the app outlived emit-push dev"
    finally:
        os.close(pidfd)
    with pytest.raises(httpx.ConnectError):
        httpx.get(dev.app_url + "health", timeout=5)


# -- riding out restarts, waiting, pipes ------------------------------------------------

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


def test_wait_says_once_that_nothing_took_the_job(
    env: dict[str, str], processes: list[Process]
) -> None:
    waiting = Process("jobs", "create", "nobody-takes-this", "--wait", env=env)
    processes.append(waiting)
    waiting.wait_for("created")
    said = waiting.wait_for("waiting: no worker has taken the job yet")
    assert said.splitlines()[-1].startswith("emit-push: waiting: no worker has taken the job yet")
    assert waiting.stop(signal.SIGINT)[0] == 130


@pytest.mark.parametrize("args", [["jobs", "get", "{job}"], ["jobs", "list"], ["--help"]])
def test_a_reader_that_goes_away_ends_the_command_quietly(
    env: dict[str, str], args: list[str]
) -> None:
    job_id = run("jobs", "create", "greet", "-q", env=env).stdout.strip()
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `| head` does once it has had enough: every write fails
    try:
        result = subprocess.run(
            [*EMIT, *(arg.format(job=job_id) for arg in args)], stdout=write_end,
            stderr=subprocess.PIPE, text=True, env=env, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert result.stderr == ""
    # 141 (128 + SIGPIPE), as for `cat` and `yes`; --help goes through argparse, which
    # ignores a failed write and exits 0.
    assert result.returncode == (0 if args == ["--help"] else 141)


# -- emit-push worker -------------------------------------------------------------------

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
    assert (result.returncode, result.stderr) == (2, message + "\n")
    assert result.stdout == "emit-push worker: greet, other (Ctrl-C stops)\n"


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
    worker.wait_for(f"  greet {greet}: completed")
    code, output = worker.stop(signal.SIGTERM)
    assert code == 0
    assert other not in output  # not among its types: left pending
    assert json.loads(run("jobs", "get", other, env=env).stdout)["status"] == "pending"
