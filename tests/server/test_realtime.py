"""Contract §8 over real uvicorn: the job and space WebSocket streams."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from emit_push.server import API_PREFIX, EmitServer, KeySpec
from emit_push.server._hub import Subscriber
from emit_push.server._realtime import _missed, _pump, _space_view
from emit_push.server._records import NewJob
from emit_push.server._wire import Event
from tests.conftest import (
    ADMIN_KEY,
    OTHER_KEY,
    PROGRESS_TOKEN,
    SPACE,
    WORKER_KEY,
    LiveServer,
    client_for,
    make_config,
)
from tests.receiver import Receiver
from tests.server.conftest import Deliveries, call, event_types, job, start
from tests.waiting import eventually

CREATE_ONLY_KEY = "emit_test_create_only"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    base = make_config()
    server = LiveServer(
        make_config(
            db_path=str(tmp_path / "emit.sqlite3"),
            api_keys=[*base.api_keys, KeySpec(CREATE_ONLY_KEY, ["jobs:create"])],
        )
    )
    yield server
    server.stop()


@pytest.fixture
async def http(live: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with live.client() as client:
        yield client


async def create(http: httpx.AsyncClient, **spec: Any) -> str:
    response = await http.post(f"/spaces/{SPACE}/jobs", json={"name": "task", **spec})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def recv(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), 10))  # type: ignore[no-any-return]


async def drain(ws: ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    """Every message until the server closes, and the close code."""
    messages = []
    try:
        while True:
            messages.append(await recv(ws))
    except ConnectionClosed:
        pass
    return messages, ws.close_code


async def run_job(http: httpx.AsyncClient, job_id: str) -> None:
    for action, body in [
        ("claim", None),
        ("ack", None),
        ("progress", {"percent": 50, "message": "half", "subProgress": {"a": {"percent": 10}}}),
        ("checkpoint", {"offset": 7}),
        ("event", {"kind": "note"}),
        ("complete", {"result": {"done": True}}),
    ]:
        if action == "checkpoint":
            logs = b'{"level":"info","message":"a"}\n{"level":"warn","message":"b"}\n'
            assert (await http.post(f"/jobs/{job_id}/logs", content=logs)).status_code == 200
        assert (await http.post(f"/jobs/{job_id}/{action}", json=body)).status_code == 200


async def test_full_view_sees_every_event_then_close_1000(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    job_id = await create(http, payload={"n": 1})
    async with connect(f"{live.ws_url}/realtime/{job_id}?token={ADMIN_KEY}") as ws:
        init = await recv(ws)
        assert (init["type"], init["jobId"], init["status"]) == ("init", job_id, "pending")
        assert init["data"]["payload"] == {"n": 1}
        await run_job(http, job_id)
        messages, code = await drain(ws)
    assert code == 1000
    assert [m["type"] for m in messages] == [
        "delivered", "running", "progress", "logs", "checkpoint", "event", "completed",
    ]  # fmt: skip
    by_type = {m["type"]: m for m in messages}
    assert by_type["progress"]["data"] == {
        "percent": 50,
        "message": "half",
        "subProgress": {"a": {"percent": 10}},
    }
    assert by_type["logs"]["data"] == {"fromSeq": 1, "toSeq": 2, "count": 2}
    assert by_type["completed"] == {
        "type": "completed",
        "jobId": job_id,
        "status": "completed",
        "data": {"done": True},
        "timestamp": by_type["completed"]["timestamp"],
    }


@pytest.mark.parametrize("how", ["anonymous", "token query", "key header"])
async def test_progress_only_view(live: LiveServer, http: httpx.AsyncClient, how: str) -> None:
    job_id = await create(http)
    url = f"{live.ws_url}/realtime/{job_id}"
    headers = {}
    if how == "token query":
        url += f"?token={PROGRESS_TOKEN}"
    elif how == "key header":
        headers["x-api-key"] = PROGRESS_TOKEN
    async with connect(url, additional_headers=headers) as ws:
        init = await recv(ws)
        assert (init["type"], init["status"], init["data"]) == (
            "init",
            "pending",
            {"progress": None},
        )
        await run_job(http, job_id)
        messages, code = await drain(ws)
    assert code == 1000
    assert [(m["type"], m["data"]) for m in messages] == [
        ("progress", {"percent": 50, "message": "half", "subProgress": {"a": {"percent": 10}}}),
        ("completed", None),
    ]


async def test_full_view_with_a_bearer_header(live: LiveServer, http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    headers = {"Authorization": f"Bearer {WORKER_KEY}"}
    async with connect(f"{live.ws_url}/realtime/{job_id}", additional_headers=headers) as ws:
        assert (await recv(ws))["data"]["id"] == job_id  # the whole job: a full view
        await http.post(f"/jobs/{job_id}/kill", json={"reason": "r"})
        messages, code = await drain(ws)
    assert ([m["type"] for m in messages], code) == (["killed"], 1000)
    assert messages[0]["data"] == {"reason": "r"}


async def test_progress_only_viewers_of_a_dying_job_see_the_close(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    job_id = await create(http, maxRetries=0)
    async with connect(f"{live.ws_url}/realtime/{job_id}") as ws:
        await recv(ws)
        for action, body in [("claim", None), ("ack", None), ("fail", {"error": "x"})]:
            await http.post(f"/jobs/{job_id}/{action}", json=body)
        assert await drain(ws) == ([], 1000)


async def test_finished_job_sends_init_and_closes(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    job_id = await create(http)
    await run_job(http, job_id)
    async with connect(f"{live.ws_url}/realtime/{job_id}?token={ADMIN_KEY}") as ws:
        messages, code = await drain(ws)
    assert [(m["type"], m["status"]) for m in messages] == [("init", "completed")]
    assert messages[0]["data"]["result"] == {"done": True}
    assert code == 1000


@pytest.mark.parametrize(
    ("path", "query", "code"),
    [
        ("/realtime/{missing}", "", 4404),
        ("/realtime/{job}", "?token=emit_wrong", 4401),
        ("/realtime/{job}", f"?token={OTHER_KEY}", 4403),
        ("/realtime/{job}", f"?token={CREATE_ONLY_KEY}", 4403),
        ("/realtime/spaces/{space}", "", 4401),
        ("/realtime/spaces/{space}", "?token=emit_wrong", 4401),
        ("/realtime/spaces/{space}", f"?token={PROGRESS_TOKEN}", 4403),
        ("/realtime/spaces/{space}", f"?token={OTHER_KEY}", 4403),
        ("/realtime/spaces/{space}", f"?token={ADMIN_KEY}&since=-1", 4400),
        ("/realtime/spaces/{space}", f"?token={ADMIN_KEY}&since=%C2%B2", 4400),  # "²"
        ("/realtime/spaces/{space}", f"?token={ADMIN_KEY}&since=%D9%A3", 4400),  # Arabic 3
    ],
)
async def test_stream_errors_close_with_contract_codes(
    live: LiveServer, http: httpx.AsyncClient, path: str, query: str, code: int
) -> None:
    job_id = await create(http)
    url = live.ws_url + path.format(missing="01JNOSUCHJOB", job=job_id, space=SPACE) + query
    async with connect(url) as ws:
        assert await drain(ws) == ([], code)


async def test_space_stream_counts_seq_and_job_names(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    await create(http)  # one pending job before we connect
    async with connect(f"{live.ws_url}/realtime/spaces/{SPACE}?token={ADMIN_KEY}") as ws:
        hello = await recv(ws)
        assert hello["type"] == "connected"
        assert hello["missed"] is False
        assert hello["counts"] == {
            "scheduled": 0, "pending": 1, "delivered": 0, "running": 0,
            "completed": 0, "dead": 0, "killed": 0,
        }  # fmt: skip
        job_id = await create(http, name="email")
        await http.post(f"/jobs/{job_id}/claim")
        events = [await recv(ws), await recv(ws)]
    start = hello["seq"]
    assert [(e["type"], e["jobName"], e["seq"], e["jobId"]) for e in events] == [
        ("created", "email", start + 1, job_id),
        ("delivered", "email", start + 2, job_id),
    ]


async def test_space_cursor_and_missed_across_a_restart(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    stream = f"{live.ws_url}/realtime/spaces/{SPACE}?token={ADMIN_KEY}"
    async with connect(stream) as ws:
        hello = await recv(ws)
        await create(http)
        seq = (await recv(ws))["seq"]
    instance = hello["streamInstanceId"]
    async with connect(f"{stream}&since={seq}&streamInstanceId={instance}") as ws:
        assert (await recv(ws))["missed"] is False  # nothing happened in between
    await create(http)
    async with connect(f"{stream}&since={seq}&streamInstanceId={instance}") as ws:
        assert (await recv(ws))["missed"] is True  # one event went by unseen
    async with connect(stream) as ws:
        await recv(ws)
        live.restart()
        assert (await drain(ws))[1] in {1001, 1012}  # going away / service restart
    async with connect(f"{stream}&since={seq + 1}&streamInstanceId={instance}") as ws:
        hello = await recv(ws)
    assert hello["missed"] is True
    assert hello["streamInstanceId"] != instance
    assert hello["counts"]["pending"] == 2  # nothing was lost: re-read over HTTP


async def test_timers_fire_on_the_real_clock(live: LiveServer, http: httpx.AsyncClient) -> None:
    job_id = await create(http, timeoutSeconds=1)
    async with connect(f"{live.ws_url}/realtime/{job_id}?token={ADMIN_KEY}") as ws:
        await recv(ws)
        await http.post(f"/jobs/{job_id}/claim")
        assert (await recv(ws))["type"] == "delivered"
        reverted = await recv(ws)  # about a second later, no ack came
    assert (reverted["type"], reverted["data"]) == ("pending", {"reason": "delivery_timeout"})


async def gone(live: LiveServer, kind: str, key: str) -> None:
    """Wait until no stream follows ``key`` (the server notices a departure by itself)."""
    await eventually(
        lambda: not live.emit.hub.subscribers(kind, key),  # type: ignore[arg-type]
        timeout=5,
        message="the subscriber was released",
    )


async def test_client_messages_of_any_kind_are_ignored_until_it_leaves(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    job_id = await create(http)
    async with connect(f"{live.ws_url}/realtime/{job_id}?token={ADMIN_KEY}") as ws:
        await recv(ws)
        await ws.send(b"\x00binary")  # used to kill the disconnect watch (KeyError)
        await ws.send("text")
        await http.post(f"/jobs/{job_id}/claim")
        assert (await recv(ws))["type"] == "delivered"  # still streaming after the frames
    await gone(live, "job", job_id)
    started = time.monotonic()
    live.stop()
    assert time.monotonic() - started < 5


async def test_the_server_stops_promptly_with_a_client_that_sent_binary(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    """A binary frame used to kill the disconnect watch: Ctrl-C then hung on the stream."""
    job_id = await create(http)
    async with connect(f"{live.ws_url}/realtime/{job_id}?token={ADMIN_KEY}") as ws:
        await recv(ws)
        await ws.send(b"\x00")
        await asyncio.sleep(0.1)  # let the server read it
        started = time.monotonic()
        await asyncio.to_thread(live.stop)
        assert time.monotonic() - started < 5
        assert (await drain(ws))[1] in {1001, 1012}


class DeadSocket:
    """A WebSocket whose peer vanished: like uvicorn's, a write does not fail at once; the
    loss is noticed when the event loop next runs its callbacks, and later sends raise."""

    def __init__(self) -> None:
        self.lost = asyncio.Event()
        self.writes_after_loss = 0

    async def send_text(self, text: str) -> None:
        if self.lost.is_set():
            raise WebSocketDisconnect(1006)
        if self.writes_after_loss == 0:
            asyncio.get_running_loop().call_soon(self.lost.set)  # connection_lost, later
        self.writes_after_loss += 1

    async def send_json(self, data: Any) -> None:
        await self.send_text(json.dumps(data))

    async def receive(self) -> dict[str, Any]:
        await self.lost.wait()
        return {"type": "websocket.disconnect", "code": 1006}

    async def receive_text(self) -> str:  # what the pump used to read with
        await self.lost.wait()
        raise WebSocketDisconnect(1006)


async def test_a_backlog_is_not_written_to_a_vanished_client() -> None:
    sub = Subscriber(limit=10_000)
    for n in range(1000):
        sub.put((n + 1, Event("created", f"j{n}", SPACE, "t", "pending", 0, None, 0)))
    ws = DeadSocket()
    await asyncio.wait_for(_pump(ws, sub, _space_view), 5)  # type: ignore[arg-type]
    assert ws.writes_after_loss == 1


@pytest.mark.parametrize(
    ("since", "instance", "missed"),
    [
        (None, None, False),  # no cursor: a fresh start
        (None, "current", False),
        (None, "previous", True),
        (5, "current", False),
        (4, "current", True),
        (5, "previous", True),
        (5, None, True),  # a seq without its instance may be from before a restart
        (0, None, True),  # ... even 0, once this instance has published something
    ],
)
def test_missed(since: int | None, instance: str | None, missed: bool) -> None:
    assert _missed(since, instance, 5, "current") is missed


def test_since_zero_without_an_instance_is_fine_when_nothing_happened() -> None:
    assert _missed(0, None, 0, "current") is False


async def test_since_without_stream_instance_id(live: LiveServer, http: httpx.AsyncClient) -> None:
    stream = f"{live.ws_url}/realtime/spaces/{SPACE}?token={ADMIN_KEY}"
    async with connect(f"{stream}&since=0") as ws:
        assert (await recv(ws))["missed"] is False  # nothing published yet
    await create(http)
    async with connect(f"{stream}&since=1") as ws:
        hello = await recv(ws)
    assert (hello["seq"], hello["missed"]) == (1, True)  # right seq, but of which instance?


# -- in-process, at the ASGI level: orderings a real socket cannot pin down ---------------

# Contract §8 lists the types a stream carries; the local server adds (DECIDED) the
# outcomes of pushes, so that a failed push is seen as it fails.
STREAM_TYPES = {
    "init", "created", "scheduled", "pending", "delivered", "running", "progress",
    "checkpoint", "event", "logs", "retried", "completed", "dead", "killed", "connected",
    "push_sent", "push_failed",
}  # fmt: skip


class Peer:
    """A WebSocket client speaking ASGI to the in-process server: it records what it is
    sent, and leaves once ``stay()`` returns (by default: when ``leave()`` is called)."""

    def __init__(
        self, emit: EmitServer, url: str, stay: Callable[[], Awaitable[Any]] | None = None
    ) -> None:
        path, _, query = url.partition("?")
        self.scope = {
            "type": "websocket", "asgi": {"version": "3.0"}, "scheme": "ws",
            "http_version": "1.1", "path": API_PREFIX + path, "root_path": "",
            "query_string": query.encode(), "headers": [(b"host", b"emit.test")],
            "client": ("127.0.0.1", 50000), "server": ("emit.test", 80), "subprotocols": [],
        }  # fmt: skip
        self.messages: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self._app = emit.app
        self._connected = False
        self._left = asyncio.Event()
        self._stay = stay or self._left.wait
        self._sent = asyncio.Event()

    async def run(self) -> None:
        await self._app(self.scope, self._receive, self._send)

    async def _receive(self) -> dict[str, Any]:
        if not self._connected:
            self._connected = True
            return {"type": "websocket.connect"}
        await self._stay()
        return {"type": "websocket.disconnect", "code": 1000}

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            self.messages.append(json.loads(message["text"]))
        elif message["type"] == "websocket.close":
            self.close_code = message["code"]
        self._sent.set()

    async def until(self, done: Callable[[list[dict[str, Any]]], bool]) -> None:
        async def wait() -> None:
            while not done(self.messages):
                self._sent.clear()
                await self._sent.wait()

        await asyncio.wait_for(wait(), 10)

    def leave(self) -> None:
        self._left.set()


def types(messages: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in messages]


@pytest.mark.parametrize("server_config", [make_config(push_retry_delays=())])  # re-push by hand
async def test_push_outcomes_are_streamed_and_callbacks_are_history_only(
    emit: EmitServer, deliveries: Deliveries
) -> None:
    """push_sent / push_failed (§6, DECIDED) go to the space stream and a full job stream
    as they are recorded, never to a progress-only view; callback_* (§7) come after the
    job ended: history only."""
    receiver = Receiver(statuses=[503, 200, 200, 500])  # a push fails; the callback too
    try:
        async with client_for(emit, ADMIN_KEY) as http:
            await http.put(f"/spaces/{SPACE}/push", json={"url": receiver.url})
            space = Peer(emit, f"/realtime/spaces/{SPACE}?token={ADMIN_KEY}")
            space_run = asyncio.create_task(space.run())
            await space.until(lambda m: types(m) == ["connected"])
            job_id = await create(http, maxRetries=1, callbackUrl=receiver.url)
            await deliveries.wait_for(1, "push_failed")
            stream = Peer(emit, f"/realtime/{job_id}?token={ADMIN_KEY}")
            progress = Peer(emit, f"/realtime/{job_id}?token={PROGRESS_TOKEN}")
            runs = [asyncio.create_task(p.run()) for p in (stream, progress)]
            await stream.until(lambda m: types(m) == ["init"])
            await progress.until(lambda m: types(m) == ["init"])
            repushed = await http.post(f"/spaces/{SPACE}/repush", json={"jobIds": [job_id]})
            assert repushed.json() == {"queued": 1}
            await deliveries.wait_for(1, "push_sent")
            await start(http, job_id)
            await call(http, job_id, "fail", {"error": "again"})  # pending again: a push
            await deliveries.wait_for(2, "push_sent")
            await start(http, job_id)
            await call(http, job_id, "complete", {"result": 1})
            await deliveries.wait_for(2, "callback_failed", "callback_sent")
            await asyncio.wait_for(asyncio.gather(*runs), 10)  # closed after `completed`
            marker = await create(http, name="marker")  # published after every record above
            await space.until(lambda m: any(x.get("jobId") == marker for x in m))
            space.leave()
            await asyncio.wait_for(space_run, 10)
            history = event_types(await job(http, job_id))
    finally:
        receiver.stop()
    lifecycle = [
        "delivered",
        "running",
        "retried",
        "push_sent",
        "delivered",
        "running",
        "completed",
    ]
    assert (types(stream.messages), stream.close_code) == (["init", "push_sent", *lifecycle], 1000)
    assert types(progress.messages) == ["init", "completed"]
    ours = [m for m in space.messages if m.get("jobId") == job_id]
    assert types(ours) == ["created", "push_failed", "push_sent", *lifecycle]
    failed = ours[1]
    assert (failed["status"], failed["jobName"], failed["data"]["statusCode"]) == (
        "pending",
        "task",
        503,
    )
    assert failed["data"]["url"] == receiver.url
    assert "hint" in failed["data"]
    assert {*types(stream.messages), *types(space.messages)} <= STREAM_TYPES
    assert [t for t in history if t.startswith(("push_", "callback_"))] == [
        "push_failed", "push_sent", "push_sent", "callback_failed", "callback_sent",
    ]  # fmt: skip


async def test_connected_counts_agree_with_the_events_that_follow(emit: EmitServer) -> None:
    """A write still pending in the commit group when a client connects: its events are
    published after the commit. ``connected`` must show seq and counts of one moment, so
    that counts plus the events after ``seq`` count every job once."""
    emit.engine.create(SPACE, [NewJob("task", "null", 3, 300, None, None, None)])
    assert emit.store.conn.in_transaction  # the group is not committed yet
    # Leave once the group is committed: its events have been published by then.
    peer = Peer(emit, f"/realtime/spaces/{SPACE}?token={ADMIN_KEY}", stay=emit.store.durable)
    await peer.run()  # no task: the endpoint runs now, before the loop commits the group
    [connected, *later] = peer.messages
    assert connected["type"] == "connected"
    created = [e for e in later if e["type"] == "created" and e["seq"] > connected["seq"]]
    assert connected["counts"]["pending"] + len(created) == 1
