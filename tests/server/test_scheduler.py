"""The scheduler: its real loop drives every timer, and nothing it sends can make it spin."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from emit_push.server import EmitServer, ManualClock, ServerConfig
from emit_push.server._hub import Subscriber
from emit_push.server._outbound import describe_failure
from emit_push.server._records import PushSettings
from emit_push.server._wire import Event
from tests.conftest import ADMIN_KEY, SPACE, client_for, make_config
from tests.receiver import Receiver
from tests.server.conftest import Deliveries, call, create, job, start


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start_ms=1_767_225_600_000)  # 2026-01-01T00:00:00Z


@pytest.fixture
def server_config(clock: ManualClock) -> ServerConfig:
    return make_config(clock=clock, callback_retry_delays=(1.0, 5.0, 25.0))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


async def advance(emit: EmitServer, clock: ManualClock, seconds: float) -> None:
    """Move the clock and let the scheduler's own loop (not a test call) make its pass."""
    clock.advance(seconds)
    await asyncio.wait_for(emit.scheduler.next_pass(), 5)


async def next_event(sub: Subscriber, *types: str) -> Event:
    """The next event of one of ``types`` the subscription receives (others are skipped)."""
    while True:
        event: Event = await asyncio.wait_for(sub.queue.get(), 5)
        if event.type in types:
            return event


def queued(sub: Subscriber) -> list[str]:
    return [sub.queue.get_nowait().type for _ in range(sub.queue.qsize())]


# -- the real loop drives the timers ------------------------------------------------


async def test_the_loop_fires_the_execution_timeout(
    emit: EmitServer, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    job_id = await create(http, timeoutSeconds=10, maxRetries=1)
    await start(http, job_id)
    with emit.hub.subscribe("job", job_id) as sub:
        await advance(emit, clock, 9.999)
        assert queued(sub) == []
        clock.advance(0.001)
        retried = await next_event(sub, "retried")
    assert retried.data == {"error": "timeout", "attemptNumber": 1}
    assert (await job(http, job_id))["status"] == "pending"


@pytest.mark.parametrize("action", ["progress", "checkpoint", "keepalive"])
async def test_the_loop_follows_a_rearmed_timer(
    emit: EmitServer, http: httpx.AsyncClient, clock: ManualClock, action: str
) -> None:
    bodies = {"progress": {"percent": 1, "message": "m"}, "checkpoint": {"at": 1}}
    job_id = await create(http, timeoutSeconds=10, maxRetries=0)
    await start(http, job_id)
    started = clock.now_ms()
    with emit.hub.subscribe("job", job_id) as sub:
        await advance(emit, clock, 9)
        assert (await call(http, job_id, action, bodies.get(action))).status_code == 200
        await advance(emit, clock, 9.999)  # the first deadline has passed: nothing fires
        assert "dead" not in queued(sub)
        clock.advance(0.001)
        dead = await next_event(sub, "dead")
    assert dead.at == started + 19_000


async def test_the_loop_releases_a_scheduled_job(
    emit: EmitServer, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    at = datetime.fromtimestamp(clock.now_ms() / 1000, UTC) + timedelta(minutes=1)
    with emit.hub.subscribe("space", SPACE) as sub:
        job_id = await create(http, scheduledFor=at.isoformat())
        assert [item[1].type for item in (sub.queue.get_nowait(), sub.queue.get_nowait())] == [
            "created",
            "scheduled",
        ]
        await advance(emit, clock, 59.999)
        assert sub.queue.empty()
        clock.advance(0.001)
        _, released = await asyncio.wait_for(sub.queue.get(), 5)
    assert (released.type, released.job_id, released.data) == (
        "pending",
        job_id,
        {"reason": "scheduled"},
    )


async def test_overdue_timers_fire_inside_start(tmp_path: Path, clock: ManualClock) -> None:
    config = make_config(db_path=str(tmp_path / "emit.sqlite3"), clock=clock)
    async with EmitServer(config) as server, client_for(server, ADMIN_KEY) as http:
        job_id = await create(http, timeoutSeconds=10)
        assert (await call(http, job_id, "claim")).status_code == 200
    clock.advance(11)  # the delivery timeout came due while the server was down
    server = EmitServer(config)
    await server.start()
    try:  # no await in between: the first pass ran inside start()
        row = server.store.conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,))
        assert row.fetchone()["status"] == "pending"
    finally:
        await server.stop()


async def test_the_loop_survives_any_exception(
    emit: EmitServer,
    http: httpx.AsyncClient,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    job_id = await create(http, timeoutSeconds=1)
    await call(http, job_id, "claim")
    fire_due = emit.engine.fire_due
    failures = []

    def broken_once() -> int:
        if not failures:
            failures.append(1)
            raise KeyError("a bug")
        return fire_due()

    monkeypatch.setattr(emit.engine, "fire_due", broken_once)
    with emit.hub.subscribe("job", job_id) as sub:
        await advance(emit, clock, 1)  # the pass fails: logged, tried again a second later
        assert failures == [1]
        assert "scheduler pass failed" in caplog.text
        assert sub.queue.empty()
        clock.advance(1)
        reverted = await next_event(sub, "pending")
    assert reverted.data == {"reason": "delivery_timeout"}


# -- nothing sent can make it spin -------------------------------------------------


async def passes_while_idle(emit: EmitServer, seconds: float = 0.2) -> int:
    """How many scheduler passes happen in ``seconds`` of real time, the clock standing."""
    count = 0
    original = emit.scheduler._pass

    def counting() -> int | None:
        nonlocal count
        count += 1
        return original()

    emit.scheduler._pass = counting  # type: ignore[method-assign]
    try:
        await asyncio.sleep(seconds)
    finally:
        emit.scheduler._pass = original  # type: ignore[method-assign]
    return count


@pytest.mark.parametrize(
    ("url", "headers", "error"),
    [
        ("http://127.0.0.1:99999/cb", "{}", "ExceptionGroup"),  # httpx.InvalidURL, via anyio
        ("{receiver}", '{"X-Sig": "é"}', "a header or the URL is not ASCII"),
        ("{receiver}", '{"X-Sig": "a\\r\\nb"}', "refused a header or the URL"),
        ("{receiver}", "[1]", "TypeError"),
        ("http://x:abc/cb", "{}", "InvalidURL: invalid URL"),
        ("ftp://x/cb", "{}", "UnsupportedProtocol: unsupported URL scheme"),
    ],
)
async def test_unsendable_callbacks_are_failed_attempts(
    emit: EmitServer,
    http: httpx.AsyncClient,
    clock: ManualClock,
    receiver: Receiver,
    deliveries: Deliveries,
    url: str,
    headers: str,
    error: str,
) -> None:
    """Rows the API would refuse now, from an older database: recorded, retried, dropped."""
    job_id = await create(http, callbackUrl="http://127.0.0.1:9/cb")
    emit.store.conn.execute(
        "UPDATE jobs SET callback_url = ?, callback_headers = ? WHERE id = ?",
        (url.format(receiver=receiver.url), headers, job_id),
    )
    await call(http, job_id, "kill")
    [first] = await deliveries.wait_for(1, "callback_failed")
    assert (first.data["retryAttempt"], first.data["willRetry"]) == (0, True)
    assert first.data["statusCode"] is None
    assert error in first.data["error"]
    assert await passes_while_idle(emit) <= 2  # asleep until the retry: no spinning
    [row] = emit.store.conn.execute("SELECT attempt, due_at FROM outbox").fetchall()
    assert (row["attempt"], row["due_at"]) == (1, clock.now_ms() + 1000)
    for attempts, seconds in enumerate((1, 5, 25), start=2):
        clock.advance(seconds)
        *_, last = await deliveries.wait_for(attempts, "callback_failed")
    assert (last.data["retryAttempt"], last.data["willRetry"]) == (3, False)
    assert emit.store.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0


async def test_any_exception_of_an_attempt_is_a_failed_attempt(
    emit: EmitServer,
    http: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    deliveries: Deliveries,
) -> None:
    async def explode(*args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("not from httpx")

    monkeypatch.setattr(emit.scheduler._sender._http, "send", explode)
    await http.put(f"/spaces/{SPACE}/push", json={"url": "http://127.0.0.1:9/push"})
    job_id = await create(http, callbackUrl="http://127.0.0.1:9/cb")
    [pushed] = await deliveries.wait_for(1, "push_failed")
    await call(http, job_id, "kill")
    [called] = await deliveries.wait_for(1, "callback_failed")
    assert pushed.data == {
        "url": "http://127.0.0.1:9/push",
        "statusCode": None,
        "retryAttempt": 0,
        "willRetry": True,
        "error": "ZeroDivisionError",
        "hint": "the app could not be reached: is it running, at this host and port?",
    }
    assert (called.data["error"], called.data["willRetry"]) == ("ZeroDivisionError", True)
    assert await passes_while_idle(emit) <= 2


async def test_unsendable_push_settings_are_failed_attempts_until_the_job_moves_on(
    emit: EmitServer, http: httpx.AsyncClient, clock: ManualClock, deliveries: Deliveries
) -> None:
    """Settings the API would refuse now (an older database): push_failed, retried while
    the job is pending, then the row is dropped without another attempt."""
    emit.engine.push[SPACE] = PushSettings("http://127.0.0.1:99999/p", {"X-Push": "ü"})
    job_id = await create(http)
    [failed] = await deliveries.wait_for(1, "push_failed", job_id=job_id)
    assert (failed.data["url"], failed.data["willRetry"]) == ("http://127.0.0.1:99999/p", True)
    assert await passes_while_idle(emit) <= 2  # asleep until the retry
    [row] = emit.store.conn.execute("SELECT attempt, due_at FROM outbox").fetchall()
    assert (row["attempt"], row["due_at"]) == (1, clock.now_ms() + 1000)
    await advance(emit, clock, 1)
    await deliveries.wait_for(2, "push_failed", job_id=job_id)
    await call(http, job_id, "kill")
    await advance(emit, clock, 2)
    await emit.scheduler.in_flight()
    assert emit.store.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    assert len([r for r in deliveries.records if r.type == "push_failed"]) == 2


# -- secrets stay out of events and logs --------------------------------------------


async def test_header_values_never_reach_events_or_logs(
    emit: EmitServer,
    http: httpx.AsyncClient,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
    deliveries: Deliveries,
) -> None:
    caplog.set_level(logging.DEBUG, logger="emit_push")
    secrets = ["hunter2-push", "cb-secret-1", "Bearer cb-secret-2"]
    # Values the API refuses now, stored by an older server: h11 would quote them.
    emit.engine.push[SPACE] = PushSettings(receiver.url, {"X-Push-Secret": "hunter2-push\n"})
    job_id = await create(http, callbackUrl=receiver.url)
    emit.store.conn.execute(
        "UPDATE jobs SET callback_headers = ? WHERE id = ?",
        ('{"X-Cb": "cb-secret-1\\u0000", "Authorization": "Bearer cb-secret-2"}', job_id),
    )
    [pushed] = await deliveries.wait_for(1, "push_failed")
    await call(http, job_id, "kill")
    [called] = await deliveries.wait_for(1, "callback_failed")
    assert pushed.data["error"] == "LocalProtocolError: the HTTP client refused a header or the URL"
    assert called.data["error"] == pushed.data["error"]
    document = await job(http, job_id)
    for secret in secrets:
        assert secret not in str(document["events"])
        assert secret not in caplog.text
    assert receiver.requests == []


def test_failure_descriptions_redact_configured_values() -> None:
    secret = "hunter2-value"
    quoted = httpx.LocalProtocolError(f"Illegal header value b'{secret}\\n'")
    assert secret not in describe_failure(quoted)
    echoed = httpx.ConnectError(f"refused while sending {secret} and {secret!r}")
    described = describe_failure(echoed, [secret, "ab"])
    assert described == "ConnectError: refused while sending [redacted] and '[redacted]'"
    assert describe_failure(RuntimeError(secret)) == "RuntimeError"
