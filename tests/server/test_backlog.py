"""Poll and list cost the same however many jobs wait, and page the way they say.

Cost is counted, not timed: SQLite's progress handler counts the virtual machine steps
each request makes, which grow with every row a query sorts or skips. (Timings at 1k and
200k pending: ``benchmarks/server_backlog.py``.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from emit_push.server import EmitServer
from emit_push.server._records import NewJob
from tests.conftest import SPACE
from tests.server.conftest import create

STEP = 100  # VM instructions between two calls of the progress handler


def fill(emit: EmitServer, name: str, count: int) -> None:
    spec = NewJob(name, "null", 3, 300, None, None, None)
    for start in range(0, count, 1000):
        emit.engine.create(SPACE, [spec] * min(1000, count - start))
    emit.store.commit_group()


async def steps(emit: EmitServer, request: Callable[[], Awaitable[httpx.Response]]) -> int:
    """Hundreds of SQLite VM instructions one request runs."""
    count = 0

    def counted() -> int:
        nonlocal count
        count += 1
        return 0  # go on

    emit.store.conn.set_progress_handler(counted, STEP)
    try:
        response = await request()
    finally:
        emit.store.conn.set_progress_handler(None, STEP)
    assert response.status_code == 200, response.text
    return count


async def costs(emit: EmitServer, http: httpx.AsyncClient, cursor: str) -> dict[str, int]:
    path = f"/spaces/{SPACE}/jobs"
    requests: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
        "poll": lambda: http.post(f"{path}/poll", json={"count": 5}),
        "poll types": lambda: http.post(f"{path}/poll", json={"count": 5, "types": ["rare"]}),
        "list": lambda: http.get(path, params={"limit": 50}),
        "list pending": lambda: http.get(path, params={"limit": 50, "status": "pending"}),
        "list offset": lambda: http.get(path, params={"limit": 50, "offset": 500}),
        "list before": lambda: http.get(path, params={"limit": 50, "before": cursor}),
    }
    return {name: await steps(emit, request) for name, request in requests.items()}


async def test_poll_and_list_cost_the_same_at_20k_pending_as_at_1k(
    emit: EmitServer, http: httpx.AsyncClient
) -> None:
    fill(emit, "rare", 20)  # the oldest: what a filtered poll wants
    fill(emit, "common", 1000)
    cursor = (await http.get(f"/spaces/{SPACE}/jobs", params={"offset": 600})).json()[0]["id"]
    small = await costs(emit, http, cursor)
    fill(emit, "common", 20_000)  # newer jobs: the pages above hold the same jobs as before
    large = await costs(emit, http, cursor)
    grown = {name: round(large[name] / small[name], 2) for name in small}
    assert all(ratio < 1.5 for ratio in grown.values()), (small, large)


async def test_poll_takes_the_oldest_of_the_names_asked(
    emit: EmitServer, http: httpx.AsyncClient
) -> None:
    ids = [await create(http, name) for name in ["a", "b", "c", "a", "b", "c", "a"]]
    response = await http.post(
        f"/spaces/{SPACE}/jobs/poll", json={"count": 3, "types": ["c", "a", "c"]}
    )
    assert [j["id"] for j in response.json()["jobs"]] == [ids[0], ids[2], ids[3]]
    response = await http.post(f"/spaces/{SPACE}/jobs/poll", json={"count": 50, "name": "a"})
    assert [j["id"] for j in response.json()["jobs"]] == [ids[6]]
    response = await http.post(f"/spaces/{SPACE}/jobs/poll", json={"count": 50})
    assert [j["id"] for j in response.json()["jobs"]] == [ids[1], ids[4], ids[5]]


async def test_list_pages_by_offset_and_by_cursor_alike(
    emit: EmitServer, http: httpx.AsyncClient
) -> None:
    ids = [await create(http, f"j{i}") for i in range(12)]
    newest_first = ids[::-1]
    path = f"/spaces/{SPACE}/jobs"

    async def page(**params: Any) -> list[str]:
        response = await http.get(path, params=params)
        assert response.status_code == 200, response.text
        return [j["id"] for j in response.json()]

    assert await page(limit=5) == newest_first[:5]
    assert await page(limit=5, offset=5) == newest_first[5:10]
    assert await page(limit=5, before=newest_first[4]) == newest_first[5:10]
    assert await page(limit=5, before=newest_first[9]) == newest_first[10:]
    assert await page(limit=5, before=newest_first[9], offset=1) == newest_first[11:]
    await http.post(f"/jobs/{ids[3]}/kill")
    # The cursor is a position: the job it names may have any status.
    assert await page(status="pending", before=ids[3]) == [ids[2], ids[1], ids[0]]
    assert await page(status="killed") == [ids[3]]
    unknown = await http.get(path, params={"before": "01JNOSUCHJOB00000000000000"})
    assert (unknown.status_code, unknown.json()["error"]) == (
        400,
        "before: no job of this space has that id",
    )
