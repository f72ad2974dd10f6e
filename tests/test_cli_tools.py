"""``emit-push dev``, ``worker``, ``jobs`` and ``watch``, run as real processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
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
        f"emit-push: cannot import {app}: SyntaxError: invalid syntax (greeter.py, line 13)"
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
            watch.wait_for("greet: push_failed")  # no app listened: the push is lost
            held.sendall(b"!")
            dev.wait_ready()  # and dev pushes the pending job again
    watched = run("watch", job_id, env=dev.env, timeout=30)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "completed: {'greeting': 'hello late', 'version': 2}" in watched.stdout


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
