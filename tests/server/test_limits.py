"""Caps on what workers write (413 naming the size and the limit), and a job read that is
bounded however long the job's history grew."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from emit_push.server import EmitServer
from emit_push.server._ids import new_ulid
from tests.conftest import ADMIN_KEY, client_for, make_config
from tests.server.conftest import call, create, job, start

MiB = 1024 * 1024


def too_large(response: httpx.Response) -> str:
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["code"] == "payload_too_large"
    message: str = body["error"]
    return message


@pytest.mark.parametrize(
    ("action", "body", "message"),
    [
        ("progress", {"percent": 1, "message": "x" * 4 * MiB},
         "progress message is 4194304 bytes; the limit is 16384"),
        ("progress", {"percent": 1, "message": "é" * 8193},  # 2 bytes each in UTF-8
         "progress message is 16386 bytes; the limit is 16384"),
        ("progress", {"percent": 1, "message": "m", "subProgress": {"upload": {"percent": 1, "message": "x" * 16385}}},
         "subProgress.upload.message is 16385 bytes; the limit is 16384"),
        ("progress", {"percent": 1, "message": "m", "subProgress": {f"stage-{i}": {"percent": 1, "message": "x" * 1000} for i in range(70)}},
         "progress is 72693 bytes; the limit is 65536"),
        ("checkpoint", {"offset": "x" * 65536}, "checkpoint data is 65549 bytes; the limit is 65536"),
        ("event", {"log": "x" * 4 * MiB}, "event data is 4194314 bytes; the limit is 65536"),
        ("fail", {"error": "x" * 65537}, "fail error is 65537 bytes; the limit is 65536"),
        ("kill", {"reason": "x" * 4 * MiB}, "kill reason is 4194304 bytes; the limit is 16384"),
        ("complete", {"result": {"rows": "x" * MiB}}, "result is 1048587 bytes; the limit is 1048576"),
    ],
)  # fmt: skip
async def test_worker_texts_and_data_over_their_limit_are_413(
    http: httpx.AsyncClient, action: str, body: dict[str, Any], message: str
) -> None:
    job_id = await create(http)
    await start(http, job_id)
    before = await job(http, job_id)
    assert too_large(await call(http, job_id, action, body)) == message
    after = await job(http, job_id)
    assert (after["status"], after["progress"], after["checkpoint"]) == ("running", None, None)
    assert after["events"] == before["events"]  # nothing stored


async def test_texts_and_data_at_their_limit_are_stored(http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    await start(http, job_id)
    ok = [
        ("progress", {"percent": 5, "message": "x" * 16384}),
        ("progress", {"percent": 6, "message": "é" * 8192}),
        ("checkpoint", {"offset": "x" * (65536 - 13)}),  # {"offset":"..."}: 13 more bytes
        ("event", {"e": "x" * (65536 - 8)}),
        ("fail", {"error": "x" * 65536}),
    ]
    for action, body in ok:
        assert (await call(http, job_id, action, body)).status_code == 200, action
    other = await create(http)
    assert (await call(http, other, "kill", {"reason": "é" * 8192})).status_code == 200
    assert (await job(http, other))["result"] == {"reason": "é" * 8192}


async def test_an_oversized_call_on_an_unknown_job_is_404(http: httpx.AsyncClient) -> None:
    response = await call(http, "01JNOSUCHJOB00000000000000", "fail", {"error": "x" * 70000})
    assert response.status_code == 404


async def test_limits_follow_the_configuration() -> None:
    config = make_config(max_text_bytes=10, max_event_bytes=20, max_error_bytes=30)
    async with EmitServer(config) as server, client_for(server, ADMIN_KEY) as http:
        job_id = await create(http)
        await start(http, job_id)
        response = await call(http, job_id, "progress", {"percent": 1, "message": "x" * 11})
        assert too_large(response) == "progress message is 11 bytes; the limit is 10"
        response = await call(http, job_id, "event", {"k": "x" * 20})
        assert too_large(response) == "event data is 28 bytes; the limit is 20"
        response = await call(http, job_id, "fail", {"error": "x" * 31})
        assert too_large(response) == "fail error is 31 bytes; the limit is 30"


# -- a bounded job read ------------------------------------------------------------------


def add_events(server: EmitServer, job_id: str, count: int, data: str = '{"i":0}') -> None:
    """History written straight to the database: as much as an older server accepted."""
    created = server.store.conn.execute(
        "SELECT created_at FROM jobs WHERE id = ?", (job_id,)
    ).fetchone()[0]
    with server.store.write() as db:
        db.executemany(
            "INSERT INTO job_events VALUES (?, ?, 'event', ?, 0, ?)",
            ((new_ulid(), job_id, data, created) for _ in range(count)),
        )
    server.store.commit_group()


async def test_a_job_read_holds_its_latest_events_and_a_cursor_to_the_rest(
    emit: EmitServer, http: httpx.AsyncClient
) -> None:
    job_id = await create(http)
    await start(http, job_id)
    for i in range(247):  # with created, delivered and running: 250 events
        assert (await call(http, job_id, "event", {"i": i})).status_code == 200
    first = await job(http, job_id)
    assert len(first["events"]) == 100
    assert [e["data"]["i"] for e in first["events"]] == list(range(147, 247))  # oldest first
    pages = [first["events"]]
    cursor = first["eventsCursor"]
    assert cursor == first["events"][0]["id"]
    while cursor is not None:
        page = (await http.get(f"/jobs/{job_id}", params={"eventsBefore": cursor})).json()
        pages.append(page["events"])
        cursor = page["eventsCursor"]
    history = [event for page in reversed(pages) for event in page]
    assert [len(page) for page in pages] == [100, 100, 50]
    assert [e["type"] for e in history[:3]] == ["created", "delivered", "running"]
    assert [e["data"]["i"] for e in history[3:]] == list(range(247))
    assert len({e["id"] for e in history}) == 250
    small = (await http.get(f"/jobs/{job_id}", params={"eventsLimit": 2})).json()
    assert [e["data"]["i"] for e in small["events"]] == [245, 246]
    whole = (await http.get(f"/jobs/{job_id}", params={"eventsLimit": 5000})).json()
    assert (len(whole["events"]), whole["eventsCursor"]) == (250, None)  # clamped to 1000
    bad = await http.get(f"/jobs/{job_id}", params={"eventsLimit": 0})
    assert (bad.status_code, bad.json()["error"]) == (400, "eventsLimit: must be at least 1")
    for value in ["", "x", "1.5"]:
        bad = await http.get(f"/jobs/{job_id}", params={"eventsLimit": value})
        assert (bad.status_code, bad.json()["error"]) == (400, "eventsLimit: must be an integer")


async def test_a_short_history_is_whole_with_no_cursor(http: httpx.AsyncClient) -> None:
    document = await job(http, await create(http))
    assert [e["type"] for e in document["events"]] == ["created"]
    assert document["eventsCursor"] is None


async def test_a_page_of_events_stops_at_its_byte_budget(
    emit: EmitServer, http: httpx.AsyncClient
) -> None:
    """Events of megabytes (an older server took them): about 4 MiB of data a page, and
    always one event at least."""
    job_id = await create(http)
    add_events(emit, job_id, 6, '"' + "x" * (MiB - 2) + '"')
    document = await job(http, job_id)
    assert len(document["events"]) == 4
    page = await http.get(f"/jobs/{job_id}", params={"eventsBefore": document["eventsCursor"]})
    assert len(page.json()["events"]) == 3  # two more, and created
    huge = await create(http)
    add_events(emit, huge, 1, '"' + "x" * (5 * MiB) + '"')
    assert len((await job(http, huge))["events"]) == 1


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.slow
async def test_reading_a_job_with_240_mb_of_history_is_quick_and_small(tmp_path: Path) -> None:
    """The measured case: 240 MB of events in one job took 3.1 s on the event loop and
    1 GB of RSS to read. Now a read costs one page, whatever the history holds."""
    config = make_config(db_path=str(tmp_path / "history.sqlite3"))
    async with EmitServer(config) as server, client_for(server, ADMIN_KEY) as http:
        job_id = await create(http)
        add_events(server, job_id, 240 * 16, '"' + "x" * (64 * 1024 - 2) + '"')
        await job(http, job_id)  # warm: caches and the first rendering
        before = rss_mb()
        started = time.perf_counter()
        response = await http.get(f"/jobs/{job_id}")
        elapsed = time.perf_counter() - started
        grown = rss_mb() - before
    events = response.json()["events"]
    print(f"\nGET /jobs/:id over 240 MB of events: {elapsed * 1000:.0f} ms, "
          f"{len(response.content) / MiB:.1f} MiB answered, RSS {before:.0f} MB, +{grown:.0f} MB")  # fmt: skip
    assert len(events) == 64  # 4 MiB of 64 KiB events
    assert len(response.content) < 5 * MiB
    assert elapsed < 1.0
    assert grown < 64


async def test_unknown_fields_stay_refused_where_they_were(http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    await start(http, job_id)
    response = await call(http, job_id, "progress", {"percent": 1, "message": "m", "eta": 3})
    assert response.status_code == 400  # "other strictness unchanged"
