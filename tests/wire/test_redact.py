"""Redaction takes out whole keys only, and never alters an error code (issue 10)."""

from __future__ import annotations

import json

import httpx
import pytest

from emit_push import AsyncEmitClient, EmitClient, JobKilledError
from emit_push._wire import endpoints as ep
from emit_push._wire.redact import REDACTED, redact, redact_body

KEY = "emit_live_0123456789abcdef"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"bad key {KEY}", f"bad key {REDACTED}"),
        (f"bad key {KEY}.", f"bad key {REDACTED}."),
        (f"GET /x?token={KEY}&a=1", f"GET /x?token={REDACTED}&a=1"),
        (f"'{KEY}' and \"{KEY}\"", f"'{REDACTED}' and \"{REDACTED}\""),
        (f"{KEY}_rotated is another key", f"{KEY}_rotated is another key"),
        (f"x{KEY}", f"x{KEY}"),
        ("no key here", "no key here"),
    ],
)
def test_only_whole_occurrences_are_redacted(text: str, expected: str) -> None:
    assert redact(text, KEY) == expected


@pytest.mark.parametrize("short", ["k", "emit", "1234567"])
def test_a_value_too_short_to_be_a_key_is_not_looked_for(short: str) -> None:
    text = f"409 job_killed: {short} was killed"
    assert redact(text, short) == text


def test_a_json_body_keeps_its_code_even_when_it_holds_the_key() -> None:
    body = json.dumps({"error": f"no such key {KEY}", "code": KEY}).encode()
    assert json.loads(redact_body(body, KEY)) == {"error": f"no such key {REDACTED}", "code": KEY}
    text = f"<html>bad key {KEY}</html>".encode()
    assert redact_body(text, KEY) == f"<html>bad key {REDACTED}</html>".encode()


def _killed(request: httpx.Request) -> httpx.Response:
    key = request.headers["x-api-key"]
    body = {"error": f"job killed (key {key})", "code": "job_killed"}
    return httpx.Response(409, json=body)


@pytest.mark.parametrize("key", ["k", "job_killed", KEY])
def test_a_kill_is_recognised_whatever_the_key(key: str) -> None:
    transport = httpx.MockTransport(_killed)
    client = EmitClient(space_id="s", api_key=key, transport=transport, max_retries=0)
    with client, pytest.raises(JobKilledError) as caught:
        client.send(ep.progress("job-1", 50, "halfway"))
    assert caught.value.code == "job_killed"
    if key == KEY:
        assert key not in str(caught.value.body)
        assert key not in caught.value.message


async def test_a_kill_is_recognised_with_a_short_key_async() -> None:
    transport = httpx.MockTransport(_killed)
    client = AsyncEmitClient(space_id="s", api_key="k", transport=transport, max_retries=0)
    async with client:
        with pytest.raises(JobKilledError):
            await client.send(ep.keepalive("job-1"))
