"""A restart with a file database loses nothing, and timers that came due meanwhile fire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from emit_push.server import ManualClock
from tests.conftest import SPACE, LiveServer, make_config
from tests.receiver import Receiver


async def test_restart_keeps_everything_and_fires_overdue_timers(tmp_path: Path) -> None:
    clock = ManualClock()
    live = LiveServer(make_config(db_path=str(tmp_path / "emit.sqlite3"), clock=clock))
    receiver = Receiver()
    callback_receiver = Receiver()
    callback_port = callback_receiver.port
    callback_receiver.stop()  # the first callback attempt will fail
    try:
        async with live.client() as http:

            async def create(**spec: object) -> str:
                reply = await http.post(f"/spaces/{SPACE}/jobs", json={"name": "t", **spec})
                return str(reply.json()["id"])

            now = datetime.fromtimestamp(clock.now_ms() / 1000, UTC)
            pending = await create(payload={"keep": [1, 2, 3]})
            scheduled = await create(scheduledFor=(now + timedelta(seconds=60)).isoformat())
            delivered = await create(timeoutSeconds=10)
            running = await create(timeoutSeconds=10, maxRetries=0)
            killed = await create(callbackUrl=f"http://127.0.0.1:{callback_port}/cb")
            for job_id in (delivered, running):
                await http.post(f"/jobs/{job_id}/claim")
            await http.post(f"/jobs/{running}/ack")
            await http.post(f"/jobs/{running}/progress", json={"percent": 30, "message": "m"})
            await http.post(f"/jobs/{running}/checkpoint", json={"at": 3})
            logs = b'{"level":"info","message":"one"}\n{"level":"info","message":"two"}'
            await http.post(f"/jobs/{running}/logs", content=logs)
            await http.post(f"/jobs/{killed}/kill", json={"reason": "r"})
            push = {"url": receiver.url, "headers": {"X-Secret": "s"}, "jobNames": ["t"]}
            await http.put(f"/spaces/{SPACE}/push", json=push)
            every = (pending, scheduled, delivered, running, killed)
            before = {j: (await http.get(f"/jobs/{j}")).json() for j in every}
            assert before[killed]["events"][-1]["type"] == "callback_failed"

        live.stop()
        callback_receiver = Receiver(port=callback_port)
        clock.advance(61)  # every timer is overdue while the server is down
        live.start()

        async with live.client() as http:
            jobs = {j["id"]: j for j in (await http.get(f"/spaces/{SPACE}/jobs")).json()}
            assert len(jobs) == 5
            assert jobs[pending]["payload"] == {"keep": [1, 2, 3]}
            assert jobs[scheduled]["status"] == "pending"
            assert (jobs[delivered]["status"], jobs[delivered]["attemptNumber"]) == ("pending", 0)
            assert (jobs[running]["status"], jobs[running]["result"]) == (
                "dead",
                {"error": "timeout"},
            )
            assert jobs[running]["checkpoint"] == {"at": 3}
            assert jobs[running]["progress"] == before[running]["progress"]
            page = (await http.get(f"/jobs/{running}/logs")).json()
            assert [e["message"] for e in page["logs"]] == ["one", "two"]
            assert (await http.get(f"/spaces/{SPACE}/push")).json() == push
            pushes = await receiver.wait_for(2)  # released and reverted jobs are pushed
            assert {p.json()["jobId"] for p in pushes} == {scheduled, delivered}
            assert all(p.headers["x-secret"] == "s" for p in pushes)
            [callback] = await callback_receiver.wait_for(1)  # the retry came due meanwhile
            assert callback.json()["result"] == {"reason": "r"}
            after = {j: (await http.get(f"/jobs/{j}")).json() for j in every}
            assert after[pending]["events"] == before[pending]["events"]
            for job_id, document in before.items():  # history is kept; timers only add to it
                events = document["events"]
                assert after[job_id]["events"][: len(events)] == events, job_id
    finally:
        live.stop()
        receiver.stop()
        callback_receiver.stop()


async def test_a_restart_changes_no_job_and_no_event(tmp_path: Path) -> None:
    """Nothing due meanwhile: every job, its events included, reads back exactly the same."""
    clock = ManualClock()
    live = LiveServer(make_config(db_path=str(tmp_path / "emit.sqlite3"), clock=clock))
    try:
        async with live.client() as http:

            async def create(*steps: tuple[str, Any], **spec: Any) -> str:
                reply = await http.post(f"/spaces/{SPACE}/jobs", json={"name": "t", **spec})
                job_id = str(reply.json()["id"])
                for action, body in steps:
                    answer = await http.post(f"/jobs/{job_id}/{action}", json=body)
                    assert answer.status_code == 200, answer.text
                return job_id

            later = datetime.fromtimestamp(clock.now_ms() / 1000 + 3600, UTC).isoformat()
            claim, ack = ("claim", None), ("ack", None)
            jobs = [
                await create(payload={"a": [1, "é", None]}),
                await create(scheduledFor=later),
                await create(claim),
                await create(
                    claim,
                    ack,
                    ("progress", {"percent": 40, "message": "m"}),
                    ("checkpoint", {"at": 4}),
                    ("event", {"kind": "note"}),
                    ("keepalive", None),
                ),  # fmt: skip
                await create(claim, ack, ("fail", {"error": "x"}), maxRetries=2),
                await create(claim, ack, ("complete", {"result": {"ok": True}})),
                await create(claim, ack, ("fail", {"error": "out"}), maxRetries=0),
                await create(("kill", {"reason": "r"})),
            ]
            before = [(await http.get(f"/jobs/{j}")).json() for j in jobs]
        assert all(document["events"] for document in before)
        live.restart()
        async with live.client() as http:
            after = [(await http.get(f"/jobs/{j}")).json() for j in jobs]
    finally:
        live.stop()
    for old, new in zip(before, after, strict=True):
        assert new["events"] == old["events"]
        assert new == old


async def test_an_answer_is_sent_only_once_its_write_is_committed(tmp_path: Path) -> None:
    """Writes of one loop turn share a commit; each answer waits for it: at the moment an
    answer goes out, another connection (another process, a crash-restart) sees its job."""
    import asyncio
    import json
    import sqlite3

    import httpx

    from emit_push.server import EmitServer
    from tests.conftest import ADMIN_KEY

    path = tmp_path / "emit.sqlite3"
    seen_when_answered: list[bool] = []
    async with EmitServer(make_config(db_path=str(path))) as emit:
        other = sqlite3.connect(path)

        async def checking(scope: Any, receive: Any, send: Any) -> None:
            async def send_checked(message: Any) -> None:
                if message["type"] == "http.response.body" and message.get("body"):
                    job_id = json.loads(message["body"])["id"]
                    row = other.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,))
                    seen_when_answered.append(row.fetchone() is not None)
                await send(message)

            await emit.app(scope, receive, send_checked)

        transport = httpx.ASGITransport(app=checking)
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://t/api/v1", headers={"x-api-key": ADMIN_KEY}
            ) as http:
                answers = await asyncio.gather(
                    *(http.post(f"/spaces/{SPACE}/jobs", json={"name": f"n{n}"}) for n in range(20))
                )
        finally:
            other.close()
    assert [a.status_code for a in answers] == [201] * 20
    assert seen_when_answered == [True] * 20
