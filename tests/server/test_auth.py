"""Contract §3: keys in either header, scopes and shorthands, other spaces, rate limit."""

from __future__ import annotations

import pytest

from emit_push.server import Credentials, EmitServer, KeySpec, ManualClock, ServerConfig
from tests.conftest import (
    ADMIN_KEY,
    PRODUCER_KEY,
    PROGRESS_TOKEN,
    SPACE,
    WORKER_KEY,
    client_for,
    make_config,
)
from tests.server.conftest import create

WRITE_KEY = "emit_test_write_key"
READ_KEY = "emit_test_read_key"
KILL_KEY = "emit_test_kill_key"


@pytest.fixture
def server_config() -> ServerConfig:
    config = make_config()
    extra = [
        KeySpec(WRITE_KEY, ["jobs:write"]),
        KeySpec(READ_KEY, ["jobs:read"]),
        KeySpec(KILL_KEY, ["jobs:kill"]),
    ]
    return make_config(api_keys=[*config.api_keys, *extra])


async def status(server: EmitServer, key: str | None, method: str, path: str, **kw: object) -> int:
    async with client_for(server, key) as client:
        response = await client.request(method, path, **kw)  # type: ignore[arg-type]
        return response.status_code


async def test_missing_and_unknown_keys_are_401(emit: EmitServer) -> None:
    async with client_for(emit, None) as client:
        response = await client.get(f"/spaces/{SPACE}/jobs")
        assert (response.status_code, response.json()["code"]) == (401, "unauthorized")
        for headers in (
            {"x-api-key": "emit_wrong"},
            {"authorization": "Bearer emit_wrong"},
            {"authorization": f"Basic {PRODUCER_KEY}"},
            {"authorization": "Bearer "},
        ):
            response = await client.get(f"/spaces/{SPACE}/jobs", headers=headers)
            assert response.status_code == 401, headers
            assert PRODUCER_KEY not in response.text


async def test_key_in_either_header(emit: EmitServer) -> None:
    async with client_for(emit, None) as client:
        for headers in ({"x-api-key": PRODUCER_KEY}, {"Authorization": f"Bearer {PRODUCER_KEY}"}):
            assert (await client.get(f"/spaces/{SPACE}/jobs", headers=headers)).status_code == 200


async def test_missing_scope_is_403_with_the_documented_message(emit: EmitServer) -> None:
    async with client_for(emit, WORKER_KEY) as worker:
        response = await worker.post(f"/spaces/{SPACE}/jobs", json={"name": "x"})
    assert response.status_code == 403
    assert response.json() == {"error": "Missing required scope: jobs:create", "code": "forbidden"}


# (method, path, body, the status the job must be in, the keys that may call it), per §3.
ENDPOINTS = [
    ("POST", "/spaces/{space}/jobs", {"name": "x"}, "pending", {PRODUCER_KEY}),
    ("GET", "/spaces/{space}/jobs", None, "pending", {PRODUCER_KEY, WORKER_KEY, READ_KEY}),
    ("GET", "/jobs/{job}", None, "pending", {PRODUCER_KEY, WORKER_KEY, READ_KEY}),
    ("GET", "/jobs/{job}/progress", None, "pending",
     {PRODUCER_KEY, WORKER_KEY, READ_KEY, PROGRESS_TOKEN}),
    ("GET", "/jobs/{job}/logs", None, "pending", {PRODUCER_KEY, WORKER_KEY, READ_KEY}),
    ("POST", "/spaces/{space}/jobs/poll", {}, "pending", {WORKER_KEY}),
    ("POST", "/jobs/{job}/claim", None, "pending", {WORKER_KEY}),
    ("POST", "/jobs/{job}/ack", None, "delivered", {WORKER_KEY, WRITE_KEY}),
    ("POST", "/jobs/{job}/progress", {"percent": 1, "message": "m"}, "running",
     {WORKER_KEY, WRITE_KEY}),
    ("POST", "/jobs/{job}/checkpoint", {}, "running", {WORKER_KEY, WRITE_KEY}),
    ("POST", "/jobs/{job}/event", {}, "running", {WORKER_KEY, WRITE_KEY}),
    ("POST", "/jobs/{job}/keepalive", None, "running", {WORKER_KEY, WRITE_KEY}),
    ("POST", "/jobs/{job}/complete", {}, "running", {WORKER_KEY, WRITE_KEY}),
    ("POST", "/jobs/{job}/fail", {"error": "e"}, "running", {WORKER_KEY, WRITE_KEY}),
    ("POST", "/jobs/{job}/kill", None, "pending", {PRODUCER_KEY, KILL_KEY}),
    ("GET", "/spaces/{space}/push", None, "pending", {PRODUCER_KEY}),
    ("PUT", "/spaces/{space}/push", {"url": ""}, "pending", {PRODUCER_KEY}),
]  # fmt: skip
KEYS = [PRODUCER_KEY, WORKER_KEY, PROGRESS_TOKEN, WRITE_KEY, READ_KEY, KILL_KEY]


@pytest.mark.parametrize(("method", "path", "body", "state", "allowed"), ENDPOINTS)
async def test_scope_matrix(
    emit: EmitServer, method: str, path: str, body: object, state: str, allowed: set[str]
) -> None:
    """Each key passes the scope check (and the call works) or gets 403, nothing else."""
    for key in KEYS:
        async with client_for(emit, ADMIN_KEY) as admin:
            job_id = await create(admin)
            for step in {"pending": [], "delivered": ["claim"], "running": ["claim", "ack"]}[state]:
                assert (await admin.post(f"/jobs/{job_id}/{step}")).status_code == 200
        url = path.format(space=SPACE, job=job_id)
        code = await status(emit, key, method, url, json=body)
        created = (method, path) == ("POST", "/spaces/{space}/jobs")
        assert code == ((201 if created else 200) if key in allowed else 403), (key, url)


async def test_logs_accept_event_or_progress_scope(emit: EmitServer) -> None:
    async with client_for(emit, ADMIN_KEY) as admin:
        job_id = await create(admin)
    line = b'{"level":"info","message":"m"}'
    assert await status(emit, WRITE_KEY, "POST", f"/jobs/{job_id}/logs", content=line) == 200
    assert await status(emit, READ_KEY, "POST", f"/jobs/{job_id}/logs", content=line) == 403


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def test_rate_limit_answers_429_with_retry_after(clock: ManualClock) -> None:
    async with (
        EmitServer(make_config(rate_limit=5, clock=clock)) as server,
        client_for(server, WORKER_KEY) as worker,
        client_for(server) as producer,
    ):
        codes = [(await worker.get(f"/spaces/{SPACE}/jobs")).status_code for _ in range(5)]
        assert codes == [200] * 5
        limited = await worker.get(f"/spaces/{SPACE}/jobs")
        assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")
        assert limited.headers["retry-after"] == "1"
        # the limit is per key
        assert (await producer.get(f"/spaces/{SPACE}/jobs")).status_code == 200
        clock.advance(0.2)  # one token back
        assert (await worker.get(f"/spaces/{SPACE}/jobs")).status_code == 200
        assert (await worker.get(f"/spaces/{SPACE}/jobs")).status_code == 429
        clock.advance(1)
        assert (await worker.get(f"/spaces/{SPACE}/jobs")).status_code == 200


async def test_a_rate_below_one_per_second_still_lets_requests_through(
    clock: ManualClock,
) -> None:
    async with (
        EmitServer(make_config(rate_limit=0.5, clock=clock)) as server,
        client_for(server, WORKER_KEY) as worker,
    ):
        assert (await worker.get(f"/spaces/{SPACE}/jobs")).status_code == 200
        limited = await worker.get(f"/spaces/{SPACE}/jobs")
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "2")
        clock.advance(2)
        assert (await worker.get(f"/spaces/{SPACE}/jobs")).status_code == 200


async def test_no_rate_limit_by_default(emit: EmitServer) -> None:
    async with client_for(emit, WORKER_KEY) as worker:
        for _ in range(300):
            assert (await worker.get(f"/spaces/{SPACE}/jobs?limit=1")).status_code == 200


def test_credentials_repr_hides_the_keys() -> None:
    creds = Credentials(SPACE, WORKER_KEY, PRODUCER_KEY, PROGRESS_TOKEN)
    assert SPACE in repr(creds)
    for key in (WORKER_KEY, PRODUCER_KEY, PROGRESS_TOKEN):
        assert key not in repr(creds)
