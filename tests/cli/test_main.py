"""The ``emit-push`` command, run as a real process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from emit_push.cli import main
from tests.cli.processes import EMIT, Process


def banner(text: str) -> dict[str, str]:
    fields = {
        "url": r"emit local server  (\S+)",
        "space": r"space id\s+(\S+)",
        "worker": r"worker key\s+(\S+)",
        "producer": r"producer key\s+(\S+)",
        "progress": r"progress token\s+(\S+)",
    }
    return {name: re.search(pattern, text).group(1) for name, pattern in fields.items()}  # type: ignore[union-attr]


def test_server_prints_keys_persists_them_and_stops_cleanly(
    tmp_path: Path, processes: list[Process]
) -> None:
    db = str(tmp_path / "dev.sqlite3")
    first = Process("server", "--port", "0", "--db", db)
    processes.append(first)
    info = banner(first.wait_for("Press Ctrl-C"))
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v1", info["url"])
    assert re.fullmatch(r"emit_[\w-]{40}", info["worker"])
    exports = [line.strip() for line in first.output if line.strip().startswith("export ")]
    settings = f"export EMIT_BASE_URL={info['url']} EMIT_SPACE_ID={info['space']} EMIT_API_KEY="
    assert exports == [settings + info["worker"], settings + info["producer"]]
    with httpx.Client(base_url=info["url"], headers={"x-api-key": info["producer"]}) as http:
        job = http.post(f"/spaces/{info['space']}/jobs", json={"name": "survivor"}).json()
    code, output = first.stop(signal.SIGINT)
    assert code == 0
    assert "emit local server stopped" in output
    assert "Traceback" not in output

    second = Process("server", "--port", "0", "--db", db)
    processes.append(second)
    again = banner(second.wait_for("Press Ctrl-C"))
    assert {k: again[k] for k in ("space", "worker", "producer", "progress")} == {
        k: info[k] for k in ("space", "worker", "producer", "progress")
    }
    with httpx.Client(base_url=again["url"], headers={"x-api-key": again["worker"]}) as http:
        assert http.get(f"/jobs/{job['id']}").json()["name"] == "survivor"
    assert second.stop(signal.SIGTERM)[0] == 0


def test_flags_and_environment_fix_the_space_and_keys(processes: list[Process]) -> None:
    env = {
        "EMIT_SERVER_SPACE_ID": "01JENVSPACE000000000000000",
        "EMIT_SERVER_WORKER_KEY": "emit_env_worker",
        "EMIT_SERVER_DB": ":memory:",
    }
    process = Process(
        "server", "--port", "0", "--producer-key", "emit_flag_producer",
        "--api-key", "emit_ci=jobs:poll,jobs:kill", env=env,
    )  # fmt: skip
    processes.append(process)
    info = banner(process.wait_for("Press Ctrl-C"))
    assert (info["space"], info["worker"], info["producer"]) == (
        "01JENVSPACE000000000000000",
        "emit_env_worker",
        "emit_flag_producer",
    )
    with httpx.Client(base_url=info["url"], headers={"x-api-key": "emit_ci"}) as http:
        assert http.post(f"/spaces/{info['space']}/jobs/poll", json={}).json() == {"jobs": []}
        assert http.get(f"/spaces/{info['space']}/jobs").status_code == 403
    assert process.stop()[0] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--api-key", "emit_x=jobs:everything"], "--api-key: unknown scope 'jobs:everything'"),
        (["--api-key", "emit_x"], "--api-key wants KEY=SCOPE[,SCOPE...]"),
        (["--rate-limit", "0"], "--rate-limit must be greater than 0, got 0"),
    ],
)
def test_bad_flags_give_one_clear_line(args: list[str], message: str) -> None:
    result = subprocess.run(
        [*EMIT, "server", "--db", ":memory:", *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"emit-push: {message}")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-3", "--rate-limit must be greater than 0, got -3"),
        ("nan", "--rate-limit must be greater than 0, got nan"),
        ("fast", "--rate-limit wants a number, got 'fast'"),
    ],
)
def test_a_bad_rate_limit_is_one_line_from_flag_or_environment(
    value: str, message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["server", "--db", ":memory:", "--rate-limit", value]) == 2
    assert capsys.readouterr().err == f"emit-push: {message}\n"
    monkeypatch.setenv("EMIT_SERVER_RATE_LIMIT", value)
    assert main(["server", "--db", ":memory:"]) == 2
    assert capsys.readouterr().err == f"emit-push: {message}\n"


def test_a_database_of_another_schema_is_one_line(tmp_path: Path) -> None:
    other = tmp_path / "v99.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    result = subprocess.run(
        [*EMIT, "server", "--port", "0", "--db", str(other)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.returncode, result.stderr) == (
        1,
        f"emit-push: cannot use the database {other}: {other} has schema version 99;"
        " this server knows 1. Start with a new --db file.\n",
    )


def test_a_file_that_is_no_database_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("these are notes, not a database " * 50)
    assert main(["server", "--port", "0", "--db", str(notes)]) == 1
    assert capsys.readouterr().err == (
        f"emit-push: cannot use the database {notes}: file is not a database\n"
    )


def test_keys_stay_out_of_the_request_log(processes: list[Process]) -> None:
    key = "emit_LOGGED_PRODUCER_KEY"
    process = Process(
        "server", "--port", "0", "--db", ":memory:", "--producer-key", key, "--log-level", "info"
    )
    processes.append(process)
    info = banner(process.wait_for("Press Ctrl-C"))

    async def use_the_key_in_urls() -> None:
        ws_url = info["url"].replace("http", "ws", 1)
        async with connect(f"{ws_url}/realtime/spaces/{info['space']}?token={key}") as ws:
            assert json.loads(await ws.recv())["type"] == "connected"
        async with httpx.AsyncClient(base_url=info["url"]) as http:
            response = await http.get(f"/spaces/{info['space']}/jobs", params={"token": key})
            assert response.status_code == 401  # the query is no place for keys over HTTP

    asyncio.run(use_the_key_in_urls())
    code, output = process.stop()
    assert code == 0
    assert "WebSocket /api/v1/realtime/spaces/" in output  # the log is on...
    assert "token=[redacted]" in output
    assert key not in output.split("Press Ctrl-C")[1]  # ...and the key only in the banner


def test_busy_port_is_reported(processes: list[Process]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*EMIT, "server", "--db", ":memory:", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1  # the flag is fine; the port is taken
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port" in result.stderr


def test_demo_runs_everything_and_exits_0() -> None:
    env = {**os.environ, "COLUMNS": "200"}  # one table row a line
    result = subprocess.run([*EMIT, "demo"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Every job ended as planned." in out
    assert re.search(r"resize-image\s+retried: .*image service timed out", out)  # failed once
    summary = out[out.index("Read back from the server") :]
    for name, status, attempt in [
        ("send-welcome-email", "completed", 0),
        ("resize-image", "completed", 1),
        ("transcode-video", "completed", 0),
        ("nightly-report", "completed", 0),
        ("slow-export", "killed", 0),
    ]:
        assert re.search(rf"{name}\s*│\s*{status}\s*│\s*{attempt}\s*│", summary), name
    # The one traceback is the failing handler's, logged as it failed (emit_push.run).
    told = "raised TimeoutError: image service timed out\nTraceback (most recent call last)"
    assert result.stderr.count("Traceback") == result.stderr.count(told) == 1
