"""Job logs: NDJSON in (gzip accepted), per-job sequence numbers, cursors and filters out."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest

from emit_push.server import ServerConfig
from tests.conftest import make_config
from tests.server.conftest import create

NDJSON = {"content-type": "application/x-ndjson"}


def ndjson(*entries: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(entry).encode() + b"\n" for entry in entries)


async def post_logs(http: httpx.AsyncClient, job_id: str, body: bytes, **headers: str) -> Any:
    response = await http.post(f"/jobs/{job_id}/logs", content=body, headers=NDJSON | headers)
    return response.status_code, response.json()


async def read(http: httpx.AsyncClient, job_id: str, **params: Any) -> Any:
    response = await http.get(f"/jobs/{job_id}/logs", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_lines_get_consecutive_sequence_numbers(http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    first = ndjson(*({"level": "info", "message": f"line {n}"} for n in range(3)))
    assert await post_logs(http, job_id, first) == (
        200,
        {"accepted": 3, "firstSeq": 1, "lastSeq": 3},
    )
    second = ndjson({"level": "error", "message": "line 3"})
    assert await post_logs(http, job_id, second) == (
        200,
        {"accepted": 1, "firstSeq": 4, "lastSeq": 4},
    )
    page = await read(http, job_id)
    assert [(e["seq"], e["message"]) for e in page["logs"]] == [
        (n + 1, f"line {n}") for n in range(4)
    ]
    assert page["nextCursor"] is None


async def test_every_field_round_trips(http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    entry = {
        "ts": "2025-02-24T10:30:00.123Z",
        "level": "warn",
        "message": "disk nearly full",
        "source": "worker-1",
        "metadata": {"free": 0.05, "paths": ["/tmp"]},
    }
    await post_logs(http, job_id, ndjson(entry, {"level": "debug", "message": "bare"}))
    logs = (await read(http, job_id))["logs"]
    assert logs[0] == {"seq": 1, **entry}
    assert (logs[1]["source"], logs[1]["metadata"]) == (None, None)
    assert logs[1]["ts"].endswith("Z")


async def test_gzip_bodies_are_accepted(http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    body = gzip.compress(ndjson(*({"level": "info", "message": f"z{n}"} for n in range(500))))
    status, reply = await post_logs(http, job_id, body, **{"content-encoding": "gzip"})
    assert (status, reply["accepted"]) == (200, 500)
    assert (await read(http, job_id, after=499))["logs"][0]["message"] == "z499"


async def test_blank_lines_and_crlf_are_ignored(http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    body = b'\n{"level":"info","message":"a"}\r\n\n  \n{"level":"info","message":"b"}'
    assert (await post_logs(http, job_id, body))[1]["accepted"] == 2
    assert await post_logs(http, job_id, b"\n\n") == (
        200,
        {"accepted": 0, "firstSeq": None, "lastSeq": None},
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"level":"info","message":"ok"}\n{"level":"loud","message":"x"}',
            "line 2.level: must be one of",
        ),
        (b'{"level":"info"}', "line 1.message: is required"),
        (b'{"level":"info","message":"m"}\nnot json', "line 2 is not valid JSON"),
        (b"[1, 2]", "line 1: must be a JSON object"),
        (
            b'{"level":"info","message":"m","ts":"yesterday"}',
            "line 1.ts: must be an ISO-8601 timestamp",
        ),
        (
            b'{"level":"info","message":"m","metadata":[1]}',
            "line 1.metadata: must be a JSON object",
        ),
        (b'{"level":"info","message":"m","extra":1}', "line 1.extra: is not a known field"),
    ],
)
async def test_a_bad_line_refuses_the_whole_batch(
    http: httpx.AsyncClient, body: bytes, message: str
) -> None:
    job_id = await create(http)
    status, reply = await post_logs(http, job_id, body)
    assert (status, reply["code"]) == (400, "invalid_request")
    assert reply["error"].startswith(message)
    assert (await read(http, job_id))["logs"] == []


async def test_bad_gzip_and_unsupported_encodings(http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    status, reply = await post_logs(http, job_id, b"not gzip", **{"content-encoding": "gzip"})
    assert (status, reply["code"]) == (400, "invalid_request")
    truncated = gzip.compress(ndjson({"level": "info", "message": "m"}))[:-8]
    status, reply = await post_logs(http, job_id, truncated, **{"content-encoding": "gzip"})
    assert (status, reply["error"]) == (400, "body is not valid gzip: truncated stream")
    status, reply = await post_logs(http, job_id, b"{}", **{"content-encoding": "br"})
    assert (status, reply["code"]) == (415, "unsupported_media_type")
    status, reply = await post_logs(http, job_id, b"{}", **{"content-type": "image/png"})
    assert (status, reply["code"]) == (415, "unsupported_media_type")


@pytest.fixture
def server_config() -> ServerConfig:
    return make_config(max_request_bytes=256 * 1024)


async def test_gzip_bombs_are_refused(http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    line = json.dumps({"level": "info", "message": "x" * 1000}).encode() + b"\n"
    bomb = gzip.compress(line * 2000)  # ~2 MB inflated, a few KB on the wire
    assert len(bomb) < 64 * 1024
    status, reply = await post_logs(http, job_id, bomb, **{"content-encoding": "gzip"})
    assert (status, reply["code"]) == (413, "payload_too_large")
    assert (await read(http, job_id))["logs"] == []


async def test_cursor_paging_reads_everything_once(http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    await post_logs(
        http, job_id, ndjson(*({"level": "info", "message": str(n)} for n in range(250)))
    )
    seen, cursor = [], None
    while True:
        page = await read(http, job_id, limit=100, **({"after": cursor} if cursor else {}))
        seen += [int(e["message"]) for e in page["logs"]]
        if (cursor := page["nextCursor"]) is None:
            break
    assert seen == list(range(250))
    before = await read(http, job_id, before=4)
    assert [e["seq"] for e in before["logs"]] == [1, 2, 3]


async def test_limit_is_clamped_to_1000(http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    await post_logs(http, job_id, ndjson(*({"level": "info", "message": "m"} for _ in range(1200))))
    page = await read(http, job_id, limit=5000)
    assert (len(page["logs"]), page["nextCursor"]) == (1000, 1000)
    assert len((await read(http, job_id))["logs"]) == 100


async def test_level_is_a_minimum_and_q_a_case_blind_substring(http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    levels = ["trace", "debug", "info", "warn", "error", "fatal"]
    await post_logs(
        http, job_id, ndjson(*({"level": lv, "message": f"{lv} Upload"} for lv in levels))
    )
    warn_up = await read(http, job_id, level="warn")
    assert [e["level"] for e in warn_up["logs"]] == ["warn", "error", "fatal"]
    found = await read(http, job_id, q="ERROR up")
    assert [e["message"] for e in found["logs"]] == ["error Upload"]
    assert (await read(http, job_id, q="upload", level="fatal"))["logs"][0]["seq"] == 6
    for params in ({"level": "loud"}, {"after": "x"}, {"limit": "0"}, {"q": "q" * 1001}):
        response = await http.get(f"/jobs/{job_id}/logs", params=params)
        assert response.status_code == 400, params


async def test_every_gzip_member_is_read(http: httpx.AsyncClient) -> None:
    """``cat a.gz b.gz`` is valid gzip: both members' lines are stored."""
    job_id = await create(http)
    body = gzip.compress(ndjson({"level": "info", "message": "one"})) + gzip.compress(
        ndjson({"level": "info", "message": "two"})
    )
    status, reply = await post_logs(http, job_id, body, **{"content-encoding": "gzip"})
    assert (status, reply) == (200, {"accepted": 2, "firstSeq": 1, "lastSeq": 2})
    assert [e["message"] for e in (await read(http, job_id))["logs"]] == ["one", "two"]
    garbage = gzip.compress(ndjson({"level": "info", "message": "x"})) + b"GARBAGE"
    status, reply = await post_logs(http, job_id, garbage, **{"content-encoding": "gzip"})
    assert (status, reply["error"]) == (
        400,
        "body is not valid gzip: trailing bytes after the gzip data",
    )
    assert len((await read(http, job_id))["logs"]) == 2


@pytest.mark.parametrize(
    ("ts", "message"),
    [
        ("0001-01-01T00:00:00Z", "line 2.ts: must be between the years 1970 and 9999 (UTC)"),
        ("9999-12-31T23:59:59-05:00", "line 2.ts: must be between the years 1970 and 9999 (UTC)"),
        ("soon", "line 2.ts: must be an ISO-8601 timestamp"),
    ],
)
async def test_timestamps_outside_four_digit_years_are_refused(
    http: httpx.AsyncClient, ts: str, message: str
) -> None:
    job_id = await create(http)
    body = ndjson({"level": "info", "message": "ok"}, {"level": "info", "message": "x", "ts": ts})
    status, reply = await post_logs(http, job_id, body)
    assert (status, reply["error"]) == (400, message)


async def test_timestamps_read_back_with_four_digit_years(http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    body = ndjson({"level": "info", "message": "epoch", "ts": "1970-01-01T00:00:00Z"})
    assert (await post_logs(http, job_id, body))[0] == 200
    assert (await read(http, job_id))["logs"][0]["ts"] == "1970-01-01T00:00:00.000Z"


async def test_too_deep_metadata_is_refused(http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    deep = b'{"level":"info","message":"m","metadata":{"a":' + b"[" * 70 + b"]" * 70 + b"}}\n"
    status, reply = await post_logs(http, job_id, deep)
    assert (status, reply["error"]) == (400, "line 1: JSON nests deeper than 64 levels")
