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
def test_dev_exits_1_with_the_apps_error_on_one_line(
    tmp_path: Path, source: str, message: str
) -> None:
    (tmp_path / "app.py").write_text(source)
    flags = ["--port", "0", "--server-port", "0", "--db", str(tmp_path / "dev.db")]
    result = subprocess.run(
        [*EMIT, "dev", "app.py", *flags], capture_output=True, text=True, timeout=60,
        cwd=tmp_path, env={**os.environ, **NO_SETTINGS},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
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
    assert pasted.endswith(" -m emit_push.cli jobs create greet --payload '{}' --wait")  # untyped
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


def test_the_banner_job_comes_with_a_payload_its_model_accepts() -> None:
    from pydantic import BaseModel

    from emit_push import EmitPush
    from emit_push.cli.payloads import example_job

    class Needs(BaseModel):
        url: str

    class Defaults(BaseModel):
        width: int = 320

    app = EmitPush()
    app.on_job("b-has-defaults", payload=Defaults)(lambda job: None)
    assert example_job(app) == ("b-has-defaults", {"width": 320})
    app.on_job("a-needs-a-url", payload=Needs)(lambda job: None)
    assert example_job(app) == ("a-needs-a-url", {"url": "https://example.com/"})
    untyped = EmitPush()
    untyped.on_job("c-untyped")(lambda job: None)
    assert example_job(untyped) == ("c-untyped", {})
    anything = EmitPush()
    anything.on_job("*")(lambda job: None)
    assert example_job(anything) == ("example", {})


def test_example_payloads_take_examples_then_defaults_then_a_value_of_the_type() -> None:
    import datetime
    import uuid
    from typing import Literal

    from pydantic import BaseModel, ConfigDict, Field, HttpUrl, TypeAdapter

    from emit_push.cli.payloads import example_payload

    class Size(BaseModel):
        pixels: int = Field(ge=16, le=4096, multiple_of=16)

    class Thumbnail(BaseModel):
        image_url: HttpUrl
        callback_url: str
        to: str
        at: datetime.datetime
        id: uuid.UUID
        kind: Literal["png", "jpeg"]
        ratio: float = Field(gt=0, lt=1)
        count: int = Field(gt=3)
        name: str = Field(min_length=10, examples=["cat-picture"])
        tags: list[str] = Field(min_length=1)
        size: Size
        sizes: list[Size] = [Size(pixels=128)]
        pair: tuple[int, str]
        note: str | None = None
        empty: list[int] = []
        dry_run: bool = False

    payload, valid = example_payload(TypeAdapter(Thumbnail))
    assert (payload, valid) == (
        {
            "image_url": "https://example.com/image.png",
            "callback_url": "https://example.com/callback",
            "to": "user@example.com",
            "at": "2025-01-01T00:00:00Z",
            "id": "00000000-0000-4000-8000-000000000000",
            "kind": "png",
            "ratio": 0.5,
            "count": 4,
            "name": "cat-picture",
            "tags": ["example"],
            "size": {"pixels": 16},
            "sizes": [{"pixels": 128}],
            "pair": [1, "example"],
            "dry_run": False,
        },
        True,
    )

    class Documented(BaseModel):  # the model's example, whole, when it validates...
        model_config = ConfigDict(
            json_schema_extra={"examples": [{"image_url": "https://x/a.png"}]}
        )
        image_url: str

    assert example_payload(TypeAdapter(Documented)) == ({"image_url": "https://x/a.png"}, True)

    class Stale(BaseModel):  # ...else its fields' examples, else neither
        model_config = ConfigDict(json_schema_extra={"examples": [{"old_name": 1}]})
        image_url: str = Field(examples=["https://x/b.png"])
        width: int = Field(examples=["wide"])

    assert example_payload(TypeAdapter(Stale)) == (
        {"image_url": "https://example.com/image.png", "width": 1},
        True,
    )

    class Node(BaseModel):  # recursive: one level of children shown, then none
        name: str
        children: list[Node]

    assert example_payload(TypeAdapter(Node)) == (
        {"name": "example", "children": [{"name": "example", "children": []}]},
        True,
    )
    assert example_payload(TypeAdapter(list[int])) == ([1], True)
    assert example_payload(None) == ({}, True)


EXAMPLES = {
    "examples/fastapi_app.py": ["thumbnail", "transcode"],
    "examples/aws_lambda/app.py": ["thumbnail"],
    "examples/gcp_functions/main.py": ["send-email"],
}


def test_every_example_handler_gets_a_payload_it_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    from emit_push.cli.common import load_app
    from emit_push.cli.payloads import example_payload

    monkeypatch.setenv("EMIT_SPACE_ID", "01JTESTSPACE00000000000000")
    monkeypatch.setenv("EMIT_API_KEY", "emit_test_worker_key")
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    try:
        for path, names in EXAMPLES.items():
            app = load_app(path)
            assert sorted(app.handlers) == names
            for name in names:
                payload, valid = example_payload(app.handlers[name].payload)
                assert valid, (path, name, payload)
    finally:
        for module in set(sys.modules) - before:  # the examples' modules: app, main, ...
            del sys.modules[module]


@pytest.mark.slow
@pytest.mark.parametrize("example", [f"{path}:app" for path in EXAMPLES])
def test_the_banners_command_completes_a_job_of_each_example(
    tmp_path: Path, processes: list[Process], example: str
) -> None:
    dev = Dev(processes, example, cwd=REPO, db=tmp_path / "dev.db")
    pasted = dev.banner.split("Create a job (in another shell):\n")[1].split("\n\n")[0]
    assert "--payload '{}'" not in pasted  # each example's models need fields
    shell = subprocess.run(
        ["sh", "-c", pasted], capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert shell.returncode == 0, pasted + shell.stdout + shell.stderr
    assert "\ncompleted: {" in shell.stdout, shell.stdout
    job_id = re.match(r"created (\S+)", shell.stdout).group(1)  # type: ignore[union-attr]
    dev.process.wait_for(f" {job_id} #0 completed in ")
    code, output = dev.process.stop(signal.SIGINT)
    assert code == 0, output


FAILING = """
from emit_push import EmitPush, Job

app = EmitPush()


@app.on_job("boom")
async def boom(job: Job) -> dict:
    raise RuntimeError("database is on fire\\nand the backup too")


@app.on_job("fine")
def fine(job) -> dict:
    job.log.info("all fine here")
    return {"fine": True}
"""


@pytest.mark.slow
def test_dev_prints_one_line_per_run(tmp_path: Path, processes: list[Process]) -> None:
    (tmp_path / "app.py").write_text(FAILING)
    dev = Dev(processes, "app.py", cwd=tmp_path, db=tmp_path / "dev.db")
    failed = run(
        "jobs", "create", "boom", "--max-retries", "1", "--wait", env=dev.env
    )  # fmt: skip
    assert failed.returncode == 1, failed.stdout + failed.stderr
    boom = re.match(r"created (\S+)", failed.stdout).group(1)  # type: ignore[union-attr]
    dev.process.wait_for(f"boom {boom} #1 failed")  # said once the answer is sent
    done = dev.job("fine", "{}")
    assert done.returncode == 0, done.stdout + done.stderr
    fine = re.match(r"created (\S+)", done.stdout).group(1)  # type: ignore[union-attr]
    dev.process.wait_for(f"fine {fine} #0 completed in ")
    assert f"[fine {fine} #0] all fine here\n" in dev.process.output  # the job's own line
    lines = [line for line in dev.process.output if re.match(r"(boom|fine) ", line)]
    duration = r"in \d+\.\d\ds"
    expected = [
        rf"boom {boom} #0 failed {duration}: RuntimeError: database is on fire",
        rf"boom {boom} #1 failed {duration}: RuntimeError: database is on fire",
        rf"fine {fine} #0 completed {duration}",
    ]
    assert len(lines) == 3, lines
    for line, pattern in zip(lines, expected, strict=True):
        assert re.fullmatch(pattern, line.rstrip("\n")), (line, pattern)
    code, output = dev.process.stop(signal.SIGINT)
    assert code == 0, output


ELSEWHERE = """
import os

from emit_push import EmitPush, Job

# As a .env loaded over dev's settings would: the local server's URL without /api/v1.
app = EmitPush(base_url=os.environ["EMIT_BASE_URL"].removesuffix("/api/v1"))


@app.on_job("greet")
async def greet(job: Job) -> str:
    return "hi"
"""


@pytest.mark.slow
def test_dev_says_when_the_apps_base_url_is_not_its_server(
    tmp_path: Path, processes: list[Process]
) -> None:
    (tmp_path / "app.py").write_text(ELSEWHERE)
    dev = Dev(processes, "app.py", cwd=tmp_path, db=tmp_path / "dev.db")
    root = dev.api.removesuffix("/api/v1")
    warning = next(line for line in dev.banner.splitlines() if "base URL" in line)
    assert warning == (
        f"emit-push dev: the app's API base URL is {root} (set in its code or a .env?), not"
        f" this local server's {dev.api}: the jobs pushed to it cannot be claimed there;"
        f" check that EMIT_BASE_URL ends in /api/v1 (it is {root})"
    )
    # Its push is answered, and said: whatever the app answers, dev prints a line.
    run("jobs", "create", "greet", "-q", env=dev.env)
    said = dev.process.wait_for("push refused (500").splitlines()[-1]
    assert "/api/v1" in said, said
    code, output = dev.process.stop(signal.SIGINT)
    assert code == 0, output


@pytest.mark.parametrize(
    ("status", "answer", "line"),
    [
        (
            200,
            {"status": "failed", "jobId": "01J1", "name": "thumbnail", "attemptNumber": 0,
             "error": "RuntimeError: database is on fire\nTraceback ..."},
            "thumbnail 01J1 #0 failed in 0.12s: RuntimeError: database is on fire",
        ),
        (
            200,
            {"status": "completed", "jobId": "01J1", "name": "thumbnail", "attemptNumber": 2},
            "thumbnail 01J1 #2 completed in 0.12s",
        ),
        (
            200,
            {"status": "failed", "jobId": "01J1", "name": "slow", "attemptNumber": 0,
             "error": "deadline exceeded", "reason": "deadline exceeded"},
            "slow 01J1 #0 failed in 0.12s: deadline exceeded",
        ),
        (
            200,
            {"status": "killed", "jobId": "01J1", "name": "t", "attemptNumber": 0,
             "reason": "killed while running"},
            "t 01J1 #0 killed in 0.12s (killed while running)",
        ),
        (
            200,
            {"status": "skipped", "jobId": "01J1", "name": "t", "reason": "already claimed"},
            "t 01J1 skipped in 0.12s (already claimed)",
        ),
        (
            200,
            {"status": "ignored", "jobId": "01J1", "name": "other",
             "reason": "no handler for 'other' here"},
            "other 01J1 ignored in 0.12s (no handler for 'other' here)",
        ),
        (
            401,
            {"error": "missing or wrong push secret in the authorization header",
             "code": "unauthorized"},
            "push refused (401 unauthorized): missing or wrong push secret in the"
            " authorization header",
        ),
        (500, "Internal Server Error", "push answered 500: Internal Server Error"),
        (202, {"status": "accepted", "jobId": "01J1"}, None),
    ],
)  # fmt: skip
def test_the_run_line_says_how_a_push_ended(status: int, answer: object, line: str | None) -> None:
    from emit_push.cli.dev_app import run_line

    body = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
    assert run_line(status, body, 0.1234) == line


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
    assert result.returncode == 1
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
