"""``emit-push jobs``, run as a real process on 127.0.0.1."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from emit_push.cli import main
from tests.cli.helpers import run
from tests.cli.processes import Process
from tests.conftest import ADMIN_KEY, SPACE, LiveServer, ServeThread


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


def refusing(status: int) -> Any:
    """An ASGI app that answers every request ``status`` (a redirect to ``/emit/`` for a
    3xx): a push endpoint mounted without its trailing slash, or with another secret."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"location", b"/emit/")] if 300 <= status < 400 else []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    return app


@pytest.mark.slow
@pytest.mark.parametrize(
    ("status", "cause"),
    [(307, "HTTP 307"), (401, "HTTP 401")],
)
def test_wait_says_that_the_push_failed_and_why(
    live_server: LiveServer, env: dict[str, str], processes: list[Process], status: int, cause: str
) -> None:
    endpoint = ServeThread(refusing(status))
    try:
        url = f"{endpoint.url}/emit"
        with httpx.Client(base_url=live_server.base_url, headers={"x-api-key": ADMIN_KEY}) as http:
            http.put(f"/spaces/{SPACE}/push", json={"url": url}).raise_for_status()
        waiting = Process("jobs", "create", "greet", "--wait", env=env)
        processes.append(waiting)
        said = waiting.wait_for("emit-push: waiting: ").splitlines()[-1]
        assert said.startswith(f"emit-push: waiting: push to {url} failed: {cause}; "), said
        hint = said.partition(f"{cause}; ")[2]
        assert ("slash" if status == 307 else "secret") in hint, said
        code, output = waiting.stop(signal.SIGINT)
        assert code == 130
        assert "no worker has taken the job" not in output
    finally:
        endpoint.stop()


def test_a_failed_push_from_recorded_events() -> None:
    from emit_push._wire.models import JobEvent
    from emit_push.cli.notes import last_push_failure, push_failure

    def history(*events: dict[str, Any]) -> list[JobEvent]:
        created = {"type": "created", "data": None}
        return [JobEvent.model_validate(e) for e in (created, *events)]

    redirect = {"type": "push_failed", "data": {"statusCode": 307, "hint": "add the slash"}}
    unreachable = {"type": "push_failed", "data": {"error": "ConnectError: refused"}}
    sent = {"type": "push_sent", "data": {"statusCode": 200}}
    assert last_push_failure(history()) is None
    assert last_push_failure(history(redirect, sent)) is None  # a later push went through
    failed = last_push_failure(history(sent, redirect))
    assert failed is not None
    assert push_failure(failed) == "push failed: HTTP 307; add the slash"
    failed = last_push_failure(history(redirect, unreachable))
    assert failed is not None
    assert push_failure(failed) == "push failed: ConnectError: refused"
    assert push_failure({"statusCode": 401, "willRetry": True}) == (
        "push failed: HTTP 401; the app refused its push secret: check the header in the"
        " space's push settings (it will be sent again)"
    )


def test_each_failed_push_is_said_once_until_one_goes_through() -> None:
    from emit_push.cli.notes import PushNotes

    said: list[str] = []
    notes = PushNotes(said.append)
    refused = {"statusCode": 401, "hint": "the secret", "willRetry": True}
    notes.saw("push_failed", refused)
    notes.saw("push_failed", {**refused, "retryAttempt": 1})  # retried
    assert said == ["push failed: HTTP 401; the secret (it will be sent again)"]
    notes.saw("push_failed", {**refused, "retryAttempt": 9, "willRetry": False})  # the last
    notes.saw("push_failed", {**refused, "retryAttempt": 9, "willRetry": False})  # a re-read
    assert said[1:] == [
        "push failed: HTTP 401; the secret (no more retries: once fixed, Re-push it from the"
        " dashboard)"
    ]
    del said[1:]
    assert notes.failing
    notes.saw("push_failed", {"statusCode": 307, "hint": "the slash"})  # another cause
    notes.saw("push_sent", {"statusCode": 200})
    assert not notes.failing
    notes.saw("push_failed", refused)  # failing again after one went through
    notes.saw("push_failed", None)  # a record without data still says something
    assert said[1:] == [
        "push failed: HTTP 307; the slash",
        "push failed: HTTP 401; the secret (it will be sent again)",
        "push failed",
    ]


def test_json_prints_one_document_per_command(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("EMIT_BASE_URL", "EMIT_SPACE_ID", "EMIT_API_KEY"):
        monkeypatch.setenv(name, env[name])

    def document(*args: str) -> Any:
        assert main(["jobs", *args, "--json"]) == 0
        out, err = capsys.readouterr()
        assert err == ""
        return json.loads(out)  # one document, nothing else

    created = document("create", "greet", "--payload", '{"who": "ada"}', "--max-retries", "2")
    job_id = created["id"]
    assert created == {
        "id": job_id,
        "spaceId": SPACE,
        "status": "pending",
        "realtimeUrl": created["realtimeUrl"],
    }
    shown = document("get", job_id)
    assert (shown["id"], shown["name"], shown["status"], shown["maxRetries"]) == (
        job_id, "greet", "pending", 2,
    )  # fmt: skip
    assert [event["type"] for event in shown["events"]] == ["created"]
    assert main(["jobs", "get", job_id]) == 0  # as it always printed: the same document
    assert json.loads(capsys.readouterr().out) == shown
    listed = document("list", "--status", "pending")
    assert [(job["id"], job["name"], job["status"]) for job in listed] == [
        (job_id, "greet", "pending")
    ]
    assert "events" not in listed[0]  # as the API sends a listing: no model defaults added
    assert document("list", "--status", "completed") == []
    assert document("logs", job_id) == []
    assert document("kill", job_id, "--reason", "testing") == {
        "id": job_id,
        "status": "killed",
        "attemptNumber": 0,
    }
    assert document("get", job_id)["result"] == {"reason": "testing"}


@pytest.mark.slow
def test_create_wait_json_prints_the_job_as_it_ended(worker: Process, env: dict[str, str]) -> None:
    done = run(
        "jobs", "create", "greet", "--payload", '{"who": "bob"}', "--wait", "--json", env=env
    )
    assert (done.returncode, done.stderr) == (0, "")
    job = json.loads(done.stdout)  # no progress or log lines: the job, and nothing else
    assert (job["name"], job["status"], job["result"]) == (
        "greet", "completed", {"greeting": "hello bob", "version": 1},
    )  # fmt: skip
    logs = json.loads(run("jobs", "logs", job["id"], "--follow", "--json", env=env).stdout)
    assert [(line["level"], line["message"]) for line in logs] == [("info", "hello bob")]
    assert set(logs[0]) >= {"seq", "ts", "level", "message"}

    # A payload the handler cannot read: it fails, and with no retry left the job is dead.
    dead = run("jobs", "create", "greet", "--payload", '"bob"', "--max-retries", "0",
               "--wait", "--json", env=env)  # fmt: skip
    assert (dead.returncode, dead.stderr) == (1, "")
    job = json.loads(dead.stdout)
    assert (job["status"], job["attemptNumber"]) == ("dead", 0)
    assert "AttributeError" in job["result"]["error"]
