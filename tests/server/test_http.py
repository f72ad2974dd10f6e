"""Reading requests: JSON depth, gzip members and limits, ASCII-only numbers, clients
that leave mid-body."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import queue
import random
import socket
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from emit_push.server import API_PREFIX, EmitServer
from emit_push.server._errors import ApiError
from emit_push.server._http import gunzip, nests_deeper, parse_json, read_body
from tests.conftest import ADMIN_KEY, SPACE, ServeThread, make_config


def depth(value: Any) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def random_json(rng: random.Random, levels: int) -> Any:
    tricky = ['a["\\{', "\\", '"', "[]", '\\\\"', "}{", "é]"]
    if levels == 0 or rng.random() < 0.3:
        return rng.choice([1, None, *tricky])
    if rng.random() < 0.5:
        return [random_json(rng, levels - 1) for _ in range(rng.randint(0, 3))]
    keys = [rng.choice(tricky) + str(n) for n in range(rng.randint(0, 3))]
    return {key: random_json(rng, levels - 1) for key in keys}


def test_nesting_depth_matches_the_parsed_value() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        value = random_json(rng, 9)
        text = json.dumps(value, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 1]))
        for limit in range(10):
            assert nests_deeper(text.encode(), limit) == (depth(value) > limit), (text, limit)


@pytest.mark.parametrize(
    ("text", "deeper"),
    [
        (b"[" * 64 + b"]" * 64, False),
        (b"[" * 65 + b"]" * 65, True),
        (b'{"a":' * 65 + b"1" + b"}" * 65, True),
        (json.dumps(["[" * 100, "{" * 100]).encode(), False),  # brackets in strings
        (b'["\\"' + b"[" * 100 + b'"]', False),  # after an escaped quote, still a string
        (b'["\\\\",' + b"[" * 70 + b"]" * 70 + b"]", True),  # an escaped backslash, then the end
    ],
)
def test_nesting_edge_cases(text: bytes, deeper: bool) -> None:
    json.loads(text)
    assert nests_deeper(text, 64) is deeper


def test_too_deep_json_names_where() -> None:
    with pytest.raises(ApiError, match="line 3: JSON nests deeper than 64 levels"):
        parse_json(b"[" * 100 + b"]" * 100, "line 3")


def lines(*messages: str) -> bytes:
    return b"".join(json.dumps({"level": "info", "message": m}).encode() + b"\n" for m in messages)


def test_every_gzip_member_is_read() -> None:
    body = gzip.compress(lines("one")) + gzip.compress(b"") + gzip.compress(lines("two"))
    assert gunzip(body, 1000) == lines("one", "two")


def test_large_members_and_many_members() -> None:
    big = lines(*(f"line {n}" for n in range(20_000)))  # many input chunks in one member
    assert gunzip(gzip.compress(big), len(big)) == big
    many = b"".join(gzip.compress(lines(str(n))) for n in range(500))
    assert gunzip(many, 1 << 20) == lines(*(str(n) for n in range(500)))


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (gzip.compress(b"x\n") + b"GARBAGE", 400, "trailing bytes after the gzip data"),
        (gzip.compress(b"x\n") + b"\0\0\0\0", 400, "trailing bytes after the gzip data"),
        (gzip.compress(b"x\n") + gzip.compress(b"y\n")[:-4], 400, "truncated stream"),
        (b"", 400, "no gzip header"),
        (b"plain text", 400, "no gzip header"),
        (gzip.compress(b"a" * 600) + gzip.compress(b"b" * 600), 413, "exceeds the limit"),
        (b"".join(gzip.compress(b"") for _ in range(10_001)), 400, "more than 10000 gzip members"),
    ],
)
def test_bad_gzip(body: bytes, status: int, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        gunzip(body, 1000)
    assert caught.value.status == status
    assert message in caught.value.message


async def test_a_unicode_digit_content_length_is_not_a_number() -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    for declared in ("²", "٣", "1" * 30):
        scope = {"type": "http", "headers": [(b"content-length", declared.encode())]}
        assert await read_body(Request(scope, receive), 10) == b"{}"


@pytest.mark.parametrize("path", [f"/spaces/{SPACE}/jobs", "/jobs/01JNOSUCHJOB/complete"])
def test_a_client_that_leaves_mid_body_is_no_error(
    caplog: pytest.LogCaptureFixture, path: str
) -> None:
    """Content-Length promises 100 bytes, 10 come, the socket closes: nothing to answer,
    nothing to log (no "internal error", no uvicorn traceback), and the server serves on."""
    emit = EmitServer(make_config())
    finished: queue.Queue[str] = queue.Queue()

    async def watched(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await emit.app(scope, receive, send)
        finally:  # uvicorn logs a failure of the app before this callback runs
            if scope["type"] == "http":
                asyncio.get_running_loop().call_soon(finished.put, scope["path"])

    serve = ServeThread(watched)  # (configures uvicorn's loggers: add ours after)
    uvicorn_log = logging.getLogger("uvicorn")  # it does not propagate to caplog's root
    uvicorn_log.addHandler(caplog.handler)
    try:
        with socket.create_connection(("127.0.0.1", serve.port), timeout=10) as raw:
            raw.sendall(
                f"POST {API_PREFIX}{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"x-api-key: {ADMIN_KEY}\r\nContent-Type: application/json\r\n"
                "Content-Length: 100\r\n\r\n".encode()
                + b'{"name": "'
            )
        assert finished.get(timeout=10) == API_PREFIX + path
        with httpx.Client(base_url=serve.url + API_PREFIX, trust_env=False) as http:
            created = http.post(
                f"/spaces/{SPACE}/jobs", json={"name": "after"}, headers={"x-api-key": ADMIN_KEY}
            )
        assert created.status_code == 201, created.text
    finally:
        serve.stop()
        uvicorn_log.removeHandler(caplog.handler)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert "internal error" not in caplog.text
    assert "Traceback" not in caplog.text
