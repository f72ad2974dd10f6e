"""``emit-push dev``, run as a real process on 127.0.0.1."""

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
from pathlib import Path

import httpx
import pytest

from tests.cli.helpers import APP, NO_SETTINGS, REPO, run, write_app
from tests.cli.processes import EMIT, Process
from tests.waiting import wait_for


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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
            wait_for(
                lambda: "push_failed" in events_of(job_id, dev.env),
                timeout=20,
                message=f"push_failed in the events of {job_id}",
            )
            held.sendall(b"!")
            dev.wait_ready()  # and dev pushes the pending job again
    watched = run("watch", job_id, env=dev.env, timeout=30)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert 'completed: {"greeting": "hello late", "version": 2}' in watched.stdout


def events_of(job_id: str, env: dict[str, str]) -> list[str]:
    return [e["type"] for e in json.loads(run("jobs", "get", job_id, env=env).stdout)["events"]]


def test_the_banner_names_this_emit_push(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from emit_push.cli.dev import executable

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
    from emit_push.cli.dev_app import example_job

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
