"""Arbitrary bytes and headers at every endpoint: a clear 4xx, never a 5xx; and whatever
was accepted can be read back, and sent out without the scheduler getting stuck."""

from __future__ import annotations

import asyncio
import gzip

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emit_push.server import EmitServer, ServerConfig
from tests.conftest import ADMIN_KEY, SPACE, client_for, make_config


@pytest.fixture
def server_config() -> ServerConfig:
    # Short outbound timeouts: accepted URLs are tried for real (on loopback, mostly).
    return make_config(push_timeout=1.0, callback_timeout=1.0)


ENDPOINTS = [
    ("POST", f"/spaces/{SPACE}/jobs"),
    ("POST", f"/spaces/{SPACE}/jobs/poll"),
    ("PUT", f"/spaces/{SPACE}/push"),
    ("POST", "/jobs/{job}/claim"),
    ("POST", "/jobs/{job}/ack"),
    ("POST", "/jobs/{job}/keepalive"),
    ("POST", "/jobs/{job}/progress"),
    ("POST", "/jobs/{job}/checkpoint"),
    ("POST", "/jobs/{job}/event"),
    ("POST", "/jobs/{job}/complete"),
    ("POST", "/jobs/{job}/fail"),
    ("POST", "/jobs/{job}/kill"),
    ("POST", "/jobs/{job}/logs"),
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)


def nested(depth: int, wrapper: bytes) -> bytes:
    return wrapper.replace(b"%s", b"[" * depth + b"]" * depth)


deep_bodies = st.builds(
    nested,
    # Around the limit, and where the old server accepted what it could not render.
    st.sampled_from([63, 64, 65, 300, *range(955, 966), 5000]),
    st.sampled_from(
        [
            b"%s",
            b'{"name":"x","payload":%s}',
            b'[{"name":"x","payload":%s}]',
            b'{"result":%s}',
            b'{"a":%s}',
            b'{"percent":1,"message":"m","subProgress":{"s":%s}}',
            b'{"level":"info","message":"m","metadata":{"a":%s}}\n',
            b'{"url":"http://127.0.0.1:9","headers":%s}',
        ]
    ),
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: httpx.Request("POST", "/", json=v).read()),
    st.lists(json_values, max_size=4).map(
        lambda vs: b"\n".join(httpx.Request("POST", "/", json=v).read() for v in vs)
    ),
    deep_bodies,
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "content-type": st.sampled_from(
            ["application/json", "application/x-ndjson", "text/plain", "x/y", ""]
        ),
        "content-encoding": st.sampled_from(["gzip", "identity", "br", "GZIP"]),
    },
)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(body=bodies, extra=headers, zipped=st.booleans())
async def test_no_input_produces_a_server_error(
    emit: EmitServer, method: str, path: str, body: bytes, extra: dict[str, str], zipped: bool
) -> None:
    async with client_for(emit, ADMIN_KEY) as http:
        job_id = (await http.post(f"/spaces/{SPACE}/jobs", json={"name": "fuzz"})).json()["id"]
        await http.post(f"/jobs/{job_id}/claim")
        await http.post(f"/jobs/{job_id}/ack")
        content = gzip.compress(body) if zipped else body
        response = await http.request(
            method, path.format(job=job_id), content=content, headers=extra
        )
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert set(response.json()) == {"error", "code"}
        # What was accepted renders afterwards (the job with its events; its logs).
        for read in (f"/jobs/{job_id}", f"/jobs/{job_id}/logs"):
            assert (await http.get(read)).status_code == 200, read


DEEP_TARGETS = [
    ("POST", f"/spaces/{SPACE}/jobs", b'{"name":"x","payload":%s}'),
    ("POST", f"/spaces/{SPACE}/jobs", b'[{"name":"x","payload":%s}]'),
    ("POST", "/jobs/{job}/checkpoint", b'{"a":%s}'),
    ("POST", "/jobs/{job}/event", b'{"a":%s}'),
    ("POST", "/jobs/{job}/complete", b'{"result":%s}'),
    ("POST", "/jobs/{job}/logs", b'{"level":"info","message":"m","metadata":{"a":%s}}'),
]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(
    depth=st.one_of(st.integers(min_value=0, max_value=100), st.sampled_from(range(900, 1001))),
    target=st.sampled_from(DEEP_TARGETS),
)
async def test_json_of_any_depth_is_refused_or_renders_everywhere(
    emit: EmitServer, depth: int, target: tuple[str, str, bytes]
) -> None:
    method, path, wrapper = target
    async with client_for(emit, ADMIN_KEY) as http:
        job_id = (await http.post(f"/spaces/{SPACE}/jobs", json={"name": "fuzz"})).json()["id"]
        await http.post(f"/jobs/{job_id}/claim")
        await http.post(f"/jobs/{job_id}/ack")
        response = await http.request(
            method, path.format(job=job_id), content=nested(depth, wrapper)
        )
        assert response.status_code in {200, 201, 400}, response.text
        for read in (f"/jobs/{job_id}", f"/spaces/{SPACE}/jobs?limit=3", f"/jobs/{job_id}/logs"):
            assert (await http.get(read)).status_code == 200, read
        polled = await http.post(f"/spaces/{SPACE}/jobs/poll", json={"count": 50})
        assert polled.status_code == 200


hosts = st.sampled_from(
    ["127.0.0.1", "localhost", "[::1]", "", "%zz", "a b", "[", "x\u0000y", "ü.invalid", "0"]
)
ports = st.one_of(
    st.just(""),
    st.integers(min_value=-5, max_value=70_000).map(lambda p: f":{p}"),
    st.text(max_size=3).map(lambda t: f":{t}"),
)
urls = st.one_of(
    st.text(max_size=30),
    st.builds(
        "{}://{}{}/{}".format,
        st.sampled_from(["http", "https", "HTTP", "ftp", "", "http:"]),
        hosts,
        ports,
        st.text(max_size=8),
    ),
)
header_names = st.one_of(
    st.sampled_from(["X-Sig", "Authorization", "Content-Length", "Host", "X Y", "", "é"]),
    st.text(max_size=8),
)
header_values = st.one_of(
    st.sampled_from(["ok", "é", "a\r\nInjected: 1", " x", "x\u0000", "\t", "a  b"]),
    st.text(max_size=12),
)
outbound_headers = st.dictionaries(header_names, header_values, max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(url=urls, headers=outbound_headers, target=st.sampled_from(["callback", "push"]))
async def test_callback_and_push_settings_are_refused_or_sendable(
    emit: EmitServer, url: str, headers: dict[str, str], target: str
) -> None:
    async with client_for(emit, ADMIN_KEY) as http:
        if target == "push":
            settings = {"url": url, "headers": headers}
            response = await http.put(f"/spaces/{SPACE}/push", json=settings)
            spec = {"name": "fuzz"}
        else:
            response = None
            spec = {"name": "fuzz", "callbackUrl": url, "callbackHeaders": headers}
        created = await http.post(f"/spaces/{SPACE}/jobs", json=spec)
        for answer in (response, created):
            if answer is not None:
                assert answer.status_code in {200, 201, 400}, answer.text
        if created.status_code == 201:
            await http.post(f"/jobs/{created.json()['id']}/kill")
    emit.scheduler.run_due()  # every attempt ends recorded: nothing is left to spin on
    await asyncio.wait_for(emit.scheduler.in_flight(), 10)
    untried = emit.store.conn.execute("SELECT COUNT(*) FROM outbox WHERE attempt = 0")
    assert untried.fetchone()[0] == 0
