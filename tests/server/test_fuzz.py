"""Arbitrary bytes and headers at every endpoint: a clear 4xx, never a 5xx."""

from __future__ import annotations

import gzip

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emit_push.server import EmitServer
from tests.conftest import ADMIN_KEY, SPACE, client_for

ENDPOINTS = [
    ("POST", f"/spaces/{SPACE}/jobs"),
    ("POST", f"/spaces/{SPACE}/jobs/poll"),
    ("PUT", f"/spaces/{SPACE}/push"),
    ("POST", "/jobs/{job}/claim"),
    ("POST", "/jobs/{job}/progress"),
    ("POST", "/jobs/{job}/checkpoint"),
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
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: httpx.Request("POST", "/", json=v).read()),
    st.lists(json_values, max_size=4).map(
        lambda vs: b"\n".join(httpx.Request("POST", "/", json=v).read() for v in vs)
    ),
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
