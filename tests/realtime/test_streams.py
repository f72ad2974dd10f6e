"""``client.realtime`` against the local emit server on real uvicorn (contract §8).

Every body runs for both clients: ``Streams`` makes the realtime API of the test's kind
and ``Recorder`` collects what the callbacks see, from the test's loop (async client) or
the stream's thread (sync client), and lets the test await it. Teardown closes every
connection and proves no stream thread or task is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from emit_push._exceptions import InvalidInputError, RealtimeError
from emit_push._realtime.events import Connected, RealtimeClose, RealtimeEvent
from emit_push._realtime.streams import AsyncRealtime, AsyncRealtimeConnection, Realtime
from tests.conftest import ADMIN_KEY, OTHER_KEY, PROGRESS_TOKEN, SPACE, LiveServer
from tests.sdk.conftest import Sdk
from tests.waiting import eventually

STREAM = "emit-push realtime"
# websockets >= 15 reads proxy settings from the environment unless told not to.
PROXY_OPTION = "proxy" in inspect.signature(connect).parameters
WAIT = 10.0  # seconds: the bound of every wait


def leftovers() -> list[str]:
    """Stream threads and tasks still alive."""
    names = [t.name for t in threading.enumerate()]
    with contextlib.suppress(RuntimeError):
        names += [t.get_name() for t in asyncio.all_tasks() if not t.done()]
    return [name for name in names if name.startswith(STREAM)]


class Recorder:
    """Callbacks that record what they see, and a way to await it from the test's loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.opens = 0
        self.events: list[RealtimeEvent] = []
        self.errors: list[Exception] = []
        self.closes: list[RealtimeClose] = []
        self._changed = asyncio.Event()

    def _note(self) -> None:
        self.loop.call_soon_threadsafe(self._changed.set)

    def on_open(self) -> None:
        self.opens += 1
        self._note()

    def on_event(self, event: RealtimeEvent) -> None:
        self.events.append(event)
        self._note()

    def on_error(self, error: Exception) -> None:
        self.errors.append(error)
        self._note()

    def on_close(self, close: RealtimeClose) -> None:
        self.closes.append(close)
        self._note()

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_open": self.on_open,
            "on_event": self.on_event,
            "on_error": self.on_error,
            "on_close": self.on_close,
        }

    @property
    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def connected(self) -> list[Connected]:
        return [e for e in self.events if isinstance(e, Connected)]

    async def until(self, check: Callable[[], object]) -> None:
        async with asyncio.timeout(WAIT):
            while True:
                self._changed.clear()
                if check():
                    return
                await self._changed.wait()


class Streams:
    """The realtime API of the test's kind, built as the client will build it."""

    def __init__(self, sdk: Sdk) -> None:
        self.sdk = sdk
        self.connections: list[Any] = []

    def api(self, key: Any = ADMIN_KEY, **options: Any) -> Any:
        client = self.sdk.client(key, **options)
        api = client.realtime
        assert isinstance(api, AsyncRealtime if self.sdk.is_async else Realtime)
        if PROXY_OPTION:  # loopback only, whatever the environment says
            api._connect_options = {"proxy": None}
        return api

    def job(self, job_id: str, rec: Recorder, api: Any = None, **options: Any) -> Any:
        conn = (api or self.api()).connect_job(job_id, **{**rec.callbacks(), **options})
        self.connections.append(conn)
        return conn

    def space(self, rec: Recorder, api: Any = None, **options: Any) -> Any:
        conn = (api or self.api()).connect_space(**{**rec.callbacks(), **options})
        self.connections.append(conn)
        return conn

    async def close(self, conn: Any) -> None:
        if isinstance(conn, AsyncRealtimeConnection):
            await conn.aclose()
        else:
            await asyncio.to_thread(conn.close, WAIT)
        assert conn.done

    async def ended(self, conn: Any) -> None:
        """Wait for a stream to end by itself."""
        if isinstance(conn, AsyncRealtimeConnection):
            await asyncio.wait_for(conn.wait(), WAIT)
        else:
            assert await asyncio.to_thread(conn.wait, WAIT)

    async def aclose(self) -> None:
        for conn in self.connections:
            await self.close(conn)


@pytest.fixture
async def streams(sdk: Sdk) -> AsyncIterator[Streams]:
    s = Streams(sdk)
    yield s
    await s.aclose()
    assert leftovers() == []  # every task and thread of a stream is named for it


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with live_server.client() as client:
        yield client


async def create(http: httpx.AsyncClient, **spec: Any) -> str:
    response = await http.post(f"/spaces/{SPACE}/jobs", json={"name": "task", **spec})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def run_job(http: httpx.AsyncClient, job_id: str) -> None:
    """Claim, ack, progress, logs, checkpoint, event, complete."""
    logs = b'{"level":"info","message":"a"}\n'
    for action, body in [
        ("claim", None),
        ("ack", None),
        ("progress", {"percent": 50, "message": "half"}),
        ("logs", logs),
        ("checkpoint", {"offset": 7}),
        ("event", {"kind": "note"}),
        ("complete", {"result": {"done": True}}),
    ]:
        if isinstance(body, bytes):
            response = await http.post(f"/jobs/{job_id}/{action}", content=body)
        else:
            response = await http.post(f"/jobs/{job_id}/{action}", json=body)
        assert response.status_code == 200, response.text


FULL = ["init", "delivered", "running", "progress", "logs", "checkpoint", "event", "completed"]


# --- job streams ----------------------------------------------------------------------


async def test_an_anonymous_job_stream_sees_progress_only(
    streams: Streams, http: httpx.AsyncClient
) -> None:
    job_id = await create(http, payload={"secret": "payload"})
    rec = Recorder()
    conn = streams.job(job_id, rec)  # the client's key is not sent: progress-only view
    await rec.until(lambda: rec.events)
    await run_job(http, job_id)
    await streams.ended(conn)
    assert rec.types == ["init", "progress", "completed"]
    init, progress, completed = rec.events
    assert (init.job_id, init.status, init.data) == (job_id, "pending", {"progress": None})
    assert progress.data["percent"] == 50
    assert (completed.status, completed.data, completed.terminal) == ("completed", None, True)
    assert (rec.opens, rec.errors, conn.error) == (1, [], None)
    assert rec.closes == [RealtimeClose(1000, "job finished", None)]


@pytest.mark.parametrize(
    ("how", "view"),
    [("use_api_key", "full"), ("token", "full"), ("progress token", "progress")],
)
async def test_a_job_stream_with_a_key(
    streams: Streams, http: httpx.AsyncClient, how: str, view: str
) -> None:
    job_id = await create(http, payload={"n": 1})
    # The token sent is the one asked for, whatever the client's own key.
    cases: dict[str, tuple[str, dict[str, Any]]] = {
        "use_api_key": (ADMIN_KEY, {"use_api_key": True}),
        "token": (PROGRESS_TOKEN, {"token": ADMIN_KEY}),
        "progress token": (ADMIN_KEY, {"token": PROGRESS_TOKEN}),
    }
    client_key, options = cases[how]
    rec = Recorder()
    conn = streams.job(job_id, rec, api=streams.api(client_key), **options)
    await rec.until(lambda: rec.events)
    await run_job(http, job_id)
    await streams.ended(conn)
    if view == "full":
        assert rec.types == FULL
        assert rec.events[0].data["payload"] == {"n": 1}
        assert rec.events[-1].data == {"done": True}
    else:
        assert rec.types == ["init", "progress", "completed"]


async def test_a_key_function_is_called_for_every_connection(
    sdk: Sdk, streams: Streams, http: httpx.AsyncClient, live_server: LiveServer
) -> None:
    calls: list[str] = []

    def key() -> str:
        calls.append("sync")
        return ADMIN_KEY

    async def async_key() -> str:
        calls.append("async")
        return ADMIN_KEY

    api = streams.api(async_key if sdk.is_async else key)
    job_id = await create(http)
    rec = Recorder()
    conn = streams.job(
        job_id, rec, api=api, use_api_key=True, auto_reconnect=True, reconnect_delay=0.05
    )
    await rec.until(lambda: rec.events)
    assert "payload" in rec.events[0].data  # the full view: the key was sent
    await asyncio.to_thread(live_server.restart)
    await rec.until(lambda: rec.types.count("init") == 2)
    assert calls == [calls[0]] * conn.attempts
    assert conn.attempts >= 2
    await streams.close(conn)


async def test_a_failing_key_function_ends_the_stream_with_its_error(
    sdk: Sdk, streams: Streams
) -> None:
    def key() -> str:
        raise LookupError("the vault is down")

    async def async_key() -> str:
        raise LookupError("the vault is down")

    rec = Recorder()
    api = streams.api(async_key if sdk.is_async else key)
    conn = streams.space(rec, api=api, auto_reconnect=True)
    await streams.ended(conn)
    assert isinstance(conn.error, LookupError)
    assert (rec.errors, conn.attempts) == ([conn.error], 0)


async def test_async_callbacks_are_awaited(streams: Streams, http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    rec = Recorder()
    seen: list[str] = []

    async def on_event(event: RealtimeEvent) -> None:
        await asyncio.sleep(0)
        seen.append(event.type)
        rec.on_event(event)

    async def on_close(close: RealtimeClose) -> None:
        rec.on_close(close)

    conn = streams.job(job_id, rec, on_event=on_event, on_close=on_close)
    await rec.until(lambda: rec.events)
    await run_job(http, job_id)
    await streams.ended(conn)
    assert seen == ["init", "progress", "completed"]
    assert [c.code for c in rec.closes] == [1000]


async def test_a_failing_callback_is_logged_and_the_stream_goes_on(
    streams: Streams, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = await create(http)
    rec = Recorder()

    def on_event(event: RealtimeEvent) -> None:
        rec.on_event(event)
        raise ValueError("handler bug")

    conn = streams.job(job_id, rec, on_event=on_event)
    await rec.until(lambda: rec.events)
    await run_job(http, job_id)
    await streams.ended(conn)
    assert rec.types == ["init", "progress", "completed"]
    assert "the on_event callback of the job stream" in caplog.text
    assert "handler bug" in caplog.text


async def test_a_finished_job_sends_init_and_ends(
    streams: Streams, http: httpx.AsyncClient
) -> None:
    job_id = await create(http)
    await run_job(http, job_id)
    rec = Recorder()
    conn = streams.job(job_id, rec, use_api_key=True, auto_reconnect=True)
    await streams.ended(conn)
    assert [(e.type, e.status) for e in rec.events] == [("init", "completed")]
    assert conn.error is None


# --- the iterator form ----------------------------------------------------------------


async def test_iterating_a_job_stream(sdk: Sdk, streams: Streams, http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    api = streams.api()
    seen: list[str] = []
    if sdk.is_async:
        async for event in api.job(job_id, use_api_key=True):
            seen.append(event.type)
            if event.type == "init":
                await run_job(http, job_id)
    else:
        loop = asyncio.get_running_loop()

        def consume() -> None:
            for event in api.job(job_id, use_api_key=True):
                seen.append(event.type)
                if event.type == "init":
                    asyncio.run_coroutine_threadsafe(run_job(http, job_id), loop).result(WAIT)

        await asyncio.wait_for(asyncio.to_thread(consume), WAIT)
    assert seen == FULL


async def test_iterating_a_refused_stream_raises(sdk: Sdk, streams: Streams) -> None:
    events = streams.api().job("01JNOSUCHJOB", use_api_key=True, auto_reconnect=True)

    async def drain() -> list[RealtimeEvent]:
        if sdk.is_async:
            return [event async for event in events]
        return await asyncio.to_thread(list, events)

    with pytest.raises(RealtimeError) as caught:
        await drain()
    assert (caught.value.close_code, caught.value.code) == (4404, "job_not_found")


async def test_leaving_the_loop_closes_the_stream(
    sdk: Sdk, streams: Streams, live_server: LiveServer
) -> None:
    api = streams.api()
    hub = live_server.emit.hub
    if sdk.is_async:
        async with contextlib.aclosing(api.space()) as events:
            async for event in events:
                assert isinstance(event, Connected)
                break
        assert leftovers() == []  # closed at once
        async for event in api.space():  # closed when the iterator is collected
            assert isinstance(event, Connected)
            break
        gc.collect()
    else:

        def consume() -> None:
            for event in api.space():
                assert isinstance(event, Connected)
                break

        await asyncio.to_thread(consume)
        assert leftovers() == []  # the generator was closed as it was dropped
    await eventually(
        lambda: not leftovers() and not hub.subscribers("space", SPACE),
        timeout=WAIT,
        message="the stream's tasks ended and the server released its subscriber",
    )


# --- space streams --------------------------------------------------------------------


async def test_a_space_stream_opens_with_counts_and_numbers_every_event(
    streams: Streams, http: httpx.AsyncClient
) -> None:
    await create(http)
    rec = Recorder()
    conn = streams.space(rec)  # the client's key by default
    await rec.until(lambda: rec.events)
    connected = rec.events[0]
    assert isinstance(connected, Connected)
    assert connected.missed is False
    assert connected.counts["pending"] == 1
    assert connected.stream_instance_id
    cursor = (connected.seq, connected.stream_instance_id, False)
    assert (conn.seq, conn.stream_instance_id, conn.missed) == cursor
    job_id = await create(http, name="resize")
    await rec.until(lambda: len(rec.events) == 2)
    created = rec.events[1]
    assert (created.type, created.job_id, created.job_name) == ("created", job_id, "resize")
    assert created.seq == connected.seq + 1 == conn.seq


async def test_a_cursor_tells_whether_events_were_missed(
    streams: Streams, http: httpx.AsyncClient
) -> None:
    rec = Recorder()
    conn = streams.space(rec)
    await rec.until(lambda: rec.events)
    await create(http)
    await rec.until(lambda: len(rec.events) == 2)
    await streams.close(conn)
    cursor = {"since": conn.seq, "stream_instance_id": conn.stream_instance_id}

    again = Recorder()
    conn = streams.space(again, **cursor)
    await again.until(lambda: again.events)
    assert again.connected()[0].missed is False
    assert conn.missed is False
    await streams.close(conn)

    await create(http)  # while nobody listens
    late = Recorder()
    conn = streams.space(late, **cursor)
    await late.until(lambda: late.events)
    assert late.connected()[0].missed is True
    assert conn.missed is True


# --- reconnects -----------------------------------------------------------------------


async def test_a_space_stream_resumes_after_a_server_restart(
    streams: Streams, http: httpx.AsyncClient, live_server: LiveServer
) -> None:
    rec = Recorder()
    conn = streams.space(rec, auto_reconnect=True, reconnect_delay=0.05, max_reconnect_delay=0.2)
    await rec.until(lambda: rec.events)
    await create(http)
    await rec.until(lambda: len(rec.events) == 2)
    first = rec.connected()[0]

    await asyncio.to_thread(live_server.restart)
    await rec.until(lambda: len(rec.connected()) == 2)
    second = rec.connected()[1]
    assert second.missed is True  # a new instance: whatever passed is unknown
    assert second.stream_instance_id != first.stream_instance_id
    assert rec.closes[0].code == 1012
    assert rec.closes[0].reconnect_in is not None
    assert isinstance(rec.errors[0], RealtimeError)
    assert rec.errors[0].retryable
    assert (conn.error, conn.done) == (None, False)

    job_id = await create(http)
    await rec.until(lambda: rec.events[-1].job_id == job_id)
    assert rec.events[-1].seq == second.seq + 1 == conn.seq
    assert conn.stream_instance_id == second.stream_instance_id


async def test_a_job_stream_resumes_after_a_server_restart(
    streams: Streams, http: httpx.AsyncClient, live_server: LiveServer
) -> None:
    job_id = await create(http)
    rec = Recorder()
    conn = streams.job(job_id, rec, auto_reconnect=True, reconnect_delay=0.05)
    await rec.until(lambda: rec.events)
    await asyncio.to_thread(live_server.restart)
    await rec.until(lambda: rec.types.count("init") == 2)  # a fresh snapshot
    await run_job(http, job_id)
    await streams.ended(conn)
    assert rec.types == ["init", "init", "progress", "completed"]
    assert conn.error is None


class HeldSleep:
    """The backoff's sleep: records each delay; from the ``hold_at``-th on, waits for release."""

    def __init__(self, hold_at: int) -> None:
        self.delays: list[float] = []
        self.hold_at = hold_at
        self.held = threading.Event()
        self.release = threading.Event()

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if len(self.delays) >= self.hold_at:
            self.held.set()
            await asyncio.to_thread(self.release.wait, WAIT)

    async def hold(self) -> None:
        assert await asyncio.to_thread(self.held.wait, WAIT)

    def hold_next(self) -> None:
        self.hold_at = len(self.delays) + 1
        self.held.clear()
        self.release.clear()


async def test_backoff_grows_to_the_cap_while_the_server_is_down_and_resets(
    streams: Streams, live_server: LiveServer
) -> None:
    api = streams.api()
    api._random = lambda: 1.0  # no jitter: the delays are exact
    api._sleep = sleep = HeldSleep(hold_at=6)
    rec = Recorder()
    conn = streams.space(
        rec, api=api, auto_reconnect=True, reconnect_delay=1.0, max_reconnect_delay=8.0
    )
    await rec.until(lambda: rec.events)

    await asyncio.to_thread(live_server.stop)
    await sleep.hold()
    assert sleep.delays == [1, 2, 4, 8, 8, 8]
    assert conn.attempts == 6  # the first connection and five refused ones
    refused = rec.errors[1:]
    assert all(e.close_code is None and e.retryable for e in refused)  # type: ignore[attr-defined]
    await asyncio.to_thread(live_server.start)
    sleep.release.set()
    await rec.until(lambda: len(rec.connected()) == 2)

    sleep.hold_next()
    await asyncio.to_thread(live_server.restart)  # the connection was good: from 1 s again
    await sleep.hold()
    assert sleep.delays[6:] == [1]
    sleep.release.set()
    await rec.until(lambda: len(rec.connected()) == 3)
    assert conn.error is None


async def test_permanent_errors_are_surfaced_and_not_retried(
    streams: Streams, http: httpx.AsyncClient, live_server: LiveServer
) -> None:
    job_id = await create(http)
    retry = {"auto_reconnect": True, "reconnect_delay": 0.01}
    no_route = streams.api(base_url=live_server.base_url.replace("/v1", "/v0"))
    cases: list[tuple[str, int, Callable[[Recorder], Any]]] = [
        ("bad token", 4401, lambda rec: streams.space(rec, token="emit_wrong", **retry)),
        (
            "unknown job",
            4404,
            lambda rec: streams.job("01JNOSUCHJOB", rec, use_api_key=True, **retry),
        ),
        (
            "other space's key",
            4403,
            lambda rec: streams.space(rec, api=streams.api(OTHER_KEY), **retry),
        ),
        ("other space's job", 4403, lambda rec: streams.job(job_id, rec, token=OTHER_KEY, **retry)),
        ("missing scope", 4403, lambda rec: streams.space(rec, token=PROGRESS_TOKEN, **retry)),
        # No WebSocket route there: the server refuses the upgrade with HTTP 403.
        ("refused handshake", 4403, lambda rec: streams.job(job_id, rec, api=no_route, **retry)),
    ]
    for case, close_code, start in cases:
        rec = Recorder()
        conn = start(rec)
        await streams.ended(conn)
        error = conn.error
        assert isinstance(error, RealtimeError), case
        assert (error.close_code, error.retryable, error.reconnect_in) == (
            close_code,
            False,
            None,
        ), case
        assert (rec.errors, conn.attempts) == ([error], 1), case
        if case == "refused handshake":
            assert (error.status, rec.opens, rec.closes) == (403, 0, [])
        else:
            assert [c.code for c in rec.closes] == [close_code], case


async def test_without_auto_reconnect_a_lost_connection_ends_the_stream(
    streams: Streams, live_server: LiveServer
) -> None:
    rec = Recorder()
    conn = streams.space(rec)
    await rec.until(lambda: rec.events)
    await asyncio.to_thread(live_server.stop)
    await streams.ended(conn)
    assert isinstance(conn.error, RealtimeError)
    assert (conn.error.close_code, conn.error.retryable, conn.attempts) == (1012, True, 1)
    await asyncio.to_thread(live_server.start)

    refused = streams.space(Recorder(), api=streams.api(base_url="http://127.0.0.1:9/api/v1"))
    await streams.ended(refused)
    assert isinstance(refused.error, RealtimeError)
    assert (refused.error.close_code, refused.error.retryable) == (None, True)
    assert "could not connect" in str(refused.error)


# --- ending it ------------------------------------------------------------------------


async def test_close_ends_an_endless_stream(streams: Streams) -> None:
    rec = Recorder()
    conn = streams.space(rec, auto_reconnect=True)
    await rec.until(lambda: rec.events)
    await streams.close(conn)
    assert rec.closes == [RealtimeClose(1000, "closed by the client", None)]
    assert (conn.error, rec.errors, leftovers()) == (None, [], [])
    await streams.close(conn)  # twice is harmless


async def test_a_stop_event_ends_the_stream(sdk: Sdk, streams: Streams) -> None:
    stop: Any = asyncio.Event() if sdk.is_async else threading.Event()
    rec = Recorder()
    conn = streams.space(rec, auto_reconnect=True, stop=stop)
    await rec.until(lambda: rec.events)
    stop.set()
    await streams.ended(conn)
    assert [c.code for c in rec.closes] == [1000]
    assert conn.error is None


async def test_closing_during_the_backoff_is_immediate(
    streams: Streams, live_server: LiveServer
) -> None:
    rec = Recorder()
    api = streams.api(base_url="http://127.0.0.1:9/api/v1")  # nothing listens there
    conn = streams.space(rec, api=api, auto_reconnect=True, reconnect_delay=60)
    await rec.until(lambda: rec.errors)
    assert rec.errors[0].reconnect_in >= 30  # type: ignore[attr-defined]
    async with asyncio.timeout(5):
        await streams.close(conn)
    assert conn.attempts == 1


async def test_a_callback_may_close_its_own_connection(
    sdk: Sdk, streams: Streams, http: httpx.AsyncClient
) -> None:
    rec = Recorder()
    holder: list[Any] = []
    held = threading.Event()  # the sync stream's thread may deliver before space() returns

    def on_event(event: RealtimeEvent) -> None:
        rec.on_event(event)
        assert held.wait(WAIT)
        holder[0].close()  # from the stream's own thread (sync) or task (async)

    holder.append(streams.space(rec, on_event=on_event, auto_reconnect=True))
    held.set()
    await streams.ended(holder[0])
    assert len(rec.events) == 1


# --- options --------------------------------------------------------------------------


async def test_invalid_options_raise_at_the_call_before_any_connection(offline: Sdk) -> None:
    api = offline.client().realtime
    with pytest.raises(InvalidInputError, match="reconnect_delay must be a positive number"):
        api.connect_job("01JJOB", reconnect_delay=0)
    with pytest.raises(InvalidInputError, match="pass token= or use_api_key=True, not both"):
        api.job("01JJOB", token="emit_k", use_api_key=True)  # at the call, not the loop
    with pytest.raises(InvalidInputError, match="since must be an integer >= 0"):
        api.space(since=-1)
    with pytest.raises(InvalidInputError, match="space_id must be a non-empty string"):
        api.connect_space(" ")
    assert leftovers() == []


# --- secrets --------------------------------------------------------------------------


async def test_the_key_never_shows(
    streams: Streams, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="websockets")
    rec = Recorder()
    conn = streams.job("01JNOSUCHJOB", rec, token=ADMIN_KEY)
    await streams.ended(conn)
    texts = [str(conn.error), repr(conn.error), repr(conn), caplog.text]
    texts += [str(e) + repr(e) for e in rec.errors]
    assert all(ADMIN_KEY not in text for text in texts)
    assert "token=[redacted]" in caplog.text  # websockets logged the request line, redacted

    refused = streams.api(base_url="http://127.0.0.1:9/api/v1")
    conn = streams.job("01JNOSUCHJOB", Recorder(), api=refused, use_api_key=True)
    await streams.ended(conn)
    error = conn.error
    assert error is not None
    chain = [error, error.__cause__, error.__context__]
    assert all(ADMIN_KEY not in str(e) + repr(e) for e in chain)
    assert "[redacted]" not in str(error)  # nothing to redact: the OS error names no URL


# --- the connect hook (the TypeScript SDK's webSocketFactory) ---------------------------


async def test_a_connect_hook_opens_every_socket(
    sdk: Sdk, streams: Streams, http: httpx.AsyncClient, live_server: LiveServer
) -> None:
    """A hook that wraps websockets' ``connect`` (as one adding a proxy or TLS would) is
    called for each connection, with the URL and everything the default would get."""
    calls: list[tuple[str, dict[str, Any]]] = []

    def via_hook(url: str, **options: Any) -> Any:
        calls.append((url, options))
        return connect(url, **options)

    api = streams.api(headers={"x-deployment": "blue"})
    job_id = await create(http)
    rec = Recorder()
    retry = {"auto_reconnect": True, "reconnect_delay": 0.05}
    conn = streams.job(job_id, rec, api=api, use_api_key=True, connect=via_hook, **retry)
    await rec.until(lambda: rec.events)
    await asyncio.to_thread(live_server.restart)
    await rec.until(lambda: rec.types.count("init") == 2)  # the hook opened the second too
    await run_job(http, job_id)
    await streams.ended(conn)
    assert rec.types[-1] == "completed"
    assert len(calls) == conn.attempts >= 2
    base = live_server.base_url.replace("http://", "ws://")
    assert {url for url, _ in calls} == {f"{base}/realtime/{job_id}?token={ADMIN_KEY}"}
    options = calls[0][1]
    assert options["additional_headers"]["x-deployment"] == "blue"
    assert {"open_timeout", "close_timeout", "max_size", "logger"} <= set(options)
    assert options["max_size"] >= 2**20  # a full init holds the payload: above the default


class OtherSocket:
    """Another library's socket: its messages, then a close it reports as it can."""

    def __init__(self, *messages: str, close_code: int | None = None, reason: str = "") -> None:
        self.messages = list(messages)
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._close = (close_code, reason)
        self.closed = 0

    async def recv(self) -> str:
        if self.messages:
            return self.messages.pop(0)
        self.close_code, self.close_reason = self._close
        raise EOFError("the peer went away")

    async def close(self) -> None:
        self.closed += 1


def envelope(kind: str, status: str, data: Any = None) -> str:
    return json.dumps({"type": kind, "jobId": "01JJOB", "status": status, "data": data})


@pytest.fixture
async def offline_streams(offline: Sdk) -> AsyncIterator[Streams]:
    s = Streams(offline)
    yield s
    await s.aclose()
    assert leftovers() == []


async def test_a_connect_hook_may_open_another_librarys_socket(
    offline_streams: Streams,
) -> None:
    streams = offline_streams
    sockets: list[OtherSocket] = []
    urls: list[str] = []

    def opener(*messages: str, **close: Any) -> Any:
        async def open_socket(url: str, **options: Any) -> OtherSocket:  # an async hook
            urls.append(url)
            sockets.append(OtherSocket(*messages, **close))
            return sockets[-1]

        return open_socket

    # It ends as the job does: the events are read as from websockets' own socket.
    rec = Recorder()
    finished = opener(
        envelope("init", "running", {"progress": None}),
        envelope("progress", "running", {"percent": 50, "message": "half"}),
        envelope("completed", "completed", {"done": True}),
        close_code=1000,
    )
    conn = streams.job("01JJOB", rec, connect=finished)
    await streams.ended(conn)
    assert [(e.type, e.status) for e in rec.events] == [
        ("init", "running"),
        ("progress", "running"),
        ("completed", "completed"),
    ]
    assert ([c.code for c in rec.closes], conn.error, rec.errors) == ([1000], None, [])
    assert urls == ["ws://emit.test/api/v1/realtime/01JJOB"]
    assert sockets[0].closed >= 1

    # Its close code and reason, when it has them; else 1006 (lost) with its words.
    for close, (code, reason) in [
        ({"close_code": 1011, "reason": "internal error"}, (1011, "internal error")),
        ({}, (1006, "the peer went away")),
    ]:
        rec = Recorder()
        conn = streams.job("01JJOB", rec, connect=opener(envelope("init", "running"), **close))
        await streams.ended(conn)
        assert isinstance(conn.error, RealtimeError)
        assert (conn.error.close_code, conn.error.reason, conn.error.retryable) == (
            code,
            reason,
            True,
        )
        assert [(c.code, c.reason) for c in rec.closes] == [(code, reason)]


class Refused(Exception):
    """Another library's refused handshake, with the HTTP status it got."""

    def __init__(self, status: int) -> None:
        super().__init__(f"handshake refused: {status}")
        self.status = status


async def test_a_connect_hooks_failures_are_the_streams(offline_streams: Streams) -> None:
    streams = offline_streams
    retry = {"auto_reconnect": True, "reconnect_delay": 0.01}

    def refused(url: str, **options: Any) -> Any:
        raise Refused(403)

    rec = Recorder()
    conn = streams.job("01JJOB", rec, connect=refused, **retry)
    await streams.ended(conn)
    error = conn.error
    assert isinstance(error, RealtimeError)
    assert (error.status, error.close_code, error.retryable, conn.attempts) == (403, 4403, False, 1)
    assert "the server answered HTTP 403" in str(error)

    calls: list[str] = []

    async def unreachable(url: str, **options: Any) -> OtherSocket:
        calls.append(url)
        if len(calls) == 1:
            raise ConnectionRefusedError("nothing listens")  # an OSError: worth a retry
        return OtherSocket(envelope("completed", "completed"))

    rec = Recorder()
    conn = streams.job("01JJOB", rec, connect=unreachable, **retry)
    await streams.ended(conn)
    assert (conn.error, conn.attempts, rec.types) == (None, 2, ["completed"])
    assert [type(e) for e in rec.errors] == [RealtimeError]
