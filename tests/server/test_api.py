"""Endpoints of contract §5: shapes, validation messages, size limits, error bodies."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import httpx
import pytest

from emit_push.server import EmitServer, ServerConfig
from tests.conftest import ADMIN_KEY, OTHER_KEY, SPACE, LiveServer, client_for, make_config
from tests.server.conftest import call, create, job, start


def error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert set(body) == {"error", "code"}
    return response.status_code, body["code"], body["error"]


async def test_create_one_answers_201_with_a_ref(http: httpx.AsyncClient) -> None:
    response = await http.post(f"/spaces/{SPACE}/jobs", json={"name": "email"})
    assert response.status_code == 201
    ref = response.json()
    assert ref == {
        "id": ref["id"],
        "spaceId": SPACE,
        "status": "pending",
        "realtimeUrl": f"ws://emit.test/api/v1/realtime/{ref['id']}",
    }
    assert len(ref["id"]) == 26


async def test_create_bulk_keeps_request_order(http: httpx.AsyncClient) -> None:
    specs = [{"name": f"job-{n}", "payload": n} for n in range(20)]
    refs = (await http.post(f"/spaces/{SPACE}/jobs", json=specs)).json()
    assert len(refs) == 20
    names = [(await job(http, ref["id"]))["name"] for ref in refs]
    assert names == [spec["name"] for spec in specs]


async def test_create_defaults_and_every_field(http: httpx.AsyncClient) -> None:
    plain = await job(http, await create(http))
    assert (plain["maxRetries"], plain["timeoutSeconds"], plain["payload"]) == (3, 300, None)
    full = await job(
        http,
        await create(
            http,
            "report",
            payload={"nested": [1, 2.5, "x", None, True]},
            maxRetries=25,
            timeoutSeconds=86400,
            callbackUrl="http://127.0.0.1:9/cb",
            callbackHeaders={"X-Token": "t"},
        ),
    )
    assert full["payload"] == {"nested": [1, 2.5, "x", None, True]}
    assert (full["maxRetries"], full["timeoutSeconds"]) == (25, 86400)
    assert full["callbackUrl"] == "http://127.0.0.1:9/cb"
    assert full["callbackHeaders"] == {"X-Token": "t"}


async def test_bulk_create_is_all_or_nothing(http: httpx.AsyncClient) -> None:
    response = await http.post(
        f"/spaces/{SPACE}/jobs", json=[{"name": "ok"}, {"name": "ok"}, {"name": ""}]
    )
    assert error(response) == (400, "invalid_request", "[2].name: must not be empty")
    assert (await http.get(f"/spaces/{SPACE}/jobs")).json() == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "name: is required"),
        ({"name": 5}, "name: must be a string"),
        ({"name": "x", "maxRetries": 26}, "maxRetries: must be at most 25"),
        ({"name": "x", "maxRetries": -1}, "maxRetries: must be at least 0"),
        ({"name": "x", "maxRetries": "3"}, "maxRetries: must be an integer"),
        ({"name": "x", "maxRetries": True}, "maxRetries: must be an integer"),
        ({"name": "x", "timeoutSeconds": 0}, "timeoutSeconds: must be at least 1"),
        ({"name": "x", "timeoutSeconds": 86401}, "timeoutSeconds: must be at most 86400"),
        ({"name": "x", "timeoutSeconds": 1.5}, "timeoutSeconds: must be an integer"),
        ({"name": "x", "max_retries": 2}, "max_retries: is not a known field (did you mean 'maxRetries'?)"),
        ({"name": "x", "colour": 2}, "colour: is not a known field"),
        ({"name": "x", "scheduledFor": "tomorrow"}, "scheduledFor: must be an ISO-8601 timestamp"),
        ({"name": "x", "scheduledFor": "2020-01-01T00:00:00Z"}, "scheduledFor: must be in the future"),
        ({"name": "x", "callbackUrl": "ftp://x"}, "callbackUrl: must be an http(s) URL"),
        ({"name": "x", "callbackHeaders": {"a": 1}}, "callbackHeaders.a: must be a string"),
        ({"name": "x", "callbackHeaders": []}, "callbackHeaders: must be a JSON object"),
        ({"name": "x", "callbackHeaders": {"int": 1, "a[b]": None}},
         "callbackHeaders.int: must be a string; callbackHeaders.a[b]: must be a string"),
        ([], "body: the array holds no job specs"),
        ("job", "body: must be a JSON object"),
        ([{"name": "a"}, 7], "[1]: must be a JSON object"),
    ],
)  # fmt: skip
async def test_create_validation_names_the_field(
    http: httpx.AsyncClient, body: object, message: str
) -> None:
    response = await http.post(f"/spaces/{SPACE}/jobs", json=body)
    assert error(response) == (400, "invalid_request", message)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{", "body is not valid JSON"),
        (b"", "body is not valid JSON"),
        (b'{"name": NaN}', "NaN is not valid JSON"),
        (b'{"name": "x", "payload": Infinity}', "Infinity is not valid JSON"),
        (b"\xff\xfe{}", "body is not valid JSON"),
        (b'{"name": "\\ud800"}', "unpaired UTF-16 surrogate"),
        (b"[" * 5000 + b"]" * 5000, "body: JSON nests deeper than 64 levels"),
        (b"[" * 65 + b"]" * 65, "body: JSON nests deeper than 64 levels"),
    ],
)
async def test_malformed_json_is_a_400(
    http: httpx.AsyncClient, content: bytes, fragment: str
) -> None:
    response = await http.post(f"/spaces/{SPACE}/jobs", content=content)
    status, code, message = error(response)
    assert (status, code) == (400, "invalid_request")
    assert fragment in message


async def test_bulk_over_the_cap_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post(f"/spaces/{SPACE}/jobs", json=[{"name": "x"}] * 1001)
    assert error(response) == (400, "invalid_request", "body: at most 1000 jobs per request")


@pytest.fixture
def server_config() -> ServerConfig:
    return make_config(max_request_bytes=64 * 1024, max_payload_bytes=8 * 1024)


async def test_payload_over_the_limit_is_413(http: httpx.AsyncClient) -> None:
    response = await http.post(
        f"/spaces/{SPACE}/jobs", json=[{"name": "a"}, {"name": "b", "payload": "x" * 9000}]
    )
    assert error(response) == (
        413,
        "payload_too_large",
        "[1].payload exceeds the limit of 8192 bytes",
    )


async def test_body_over_the_limit_is_413(http: httpx.AsyncClient, emit: EmitServer) -> None:
    big = json.dumps({"name": "x", "payload": "y" * 70_000})
    response = await http.post(f"/spaces/{SPACE}/jobs", content=big)
    assert error(response)[:2] == (413, "payload_too_large")

    async def chunks():  # no Content-Length: the cap applies while streaming
        for _ in range(100):
            yield b"x" * 1024

    response = await http.post(f"/spaces/{SPACE}/jobs", content=chunks())
    assert error(response)[:2] == (413, "payload_too_large")


async def test_list_is_newest_first_with_status_limit_offset(http: httpx.AsyncClient) -> None:
    ids = [await create(http, f"n{n}") for n in range(5)]
    await start(http, ids[1])
    listed = (await http.get(f"/spaces/{SPACE}/jobs")).json()
    assert [j["id"] for j in listed] == ids[::-1]
    assert "events" not in listed[0]
    running = (await http.get(f"/spaces/{SPACE}/jobs", params={"status": "running"})).json()
    assert [j["id"] for j in running] == [ids[1]]
    page = (await http.get(f"/spaces/{SPACE}/jobs", params={"limit": 2, "offset": 1})).json()
    assert [j["id"] for j in page] == ids[::-1][1:3]


async def test_list_limit_is_clamped_to_100(http: httpx.AsyncClient) -> None:
    await http.post(f"/spaces/{SPACE}/jobs", json=[{"name": "x"}] * 120)
    assert len((await http.get(f"/spaces/{SPACE}/jobs", params={"limit": 500})).json()) == 100
    assert len((await http.get(f"/spaces/{SPACE}/jobs")).json()) == 50


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "done"}, "status: must be one of scheduled, pending, delivered, running"),
        ({"limit": "0"}, "limit: must be at least 1"),
        ({"limit": "ten"}, "limit: must be an integer"),
        ({"offset": "-1"}, "offset: must be at least 0"),
        ({"offset": "1e3"}, "offset: must be an integer"),
    ],
)
async def test_list_query_validation(
    http: httpx.AsyncClient, params: dict[str, str], message: str
) -> None:
    status, code, text = error(await http.get(f"/spaces/{SPACE}/jobs", params=params))
    assert (status, code) == (400, "invalid_request")
    assert text.startswith(message)


async def test_unknown_job_is_404_everywhere(http: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/jobs/nope"),
        ("GET", "/jobs/nope/progress"),
        ("GET", "/jobs/nope/logs"),
        ("POST", "/jobs/nope/claim"),
        ("POST", "/jobs/nope/ack"),
        ("POST", "/jobs/nope/kill"),
    ]:
        response = await http.request(method, path)
        assert error(response) == (404, "job_not_found", "Job 'nope' not found"), path
    response = await http.post("/jobs/nope/logs", content=b'{"level":"info","message":"m"}')
    assert error(response)[:2] == (404, "job_not_found")


async def test_jobs_of_another_space_are_forbidden(
    http: httpx.AsyncClient, emit: EmitServer
) -> None:
    job_id = await create(http)
    async with client_for(emit, OTHER_KEY) as other:
        for path in [f"/jobs/{job_id}", f"/jobs/{job_id}/progress", f"/jobs/{job_id}/logs"]:
            assert error(await other.get(path))[:2] == (403, "forbidden")
        assert error(await call(other, job_id, "claim"))[:2] == (403, "forbidden")
        assert error(await call(other, job_id, "kill"))[:2] == (403, "forbidden")
        response = await other.get(f"/spaces/{SPACE}/jobs")
        assert error(response) == (403, "forbidden", "API key does not belong to this space")
    assert (await job(http, job_id))["status"] == "pending"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"percent": 101, "message": "m"}, "percent: must be at most 100"),
        ({"percent": -1, "message": "m"}, "percent: must be at least 0"),
        ({"percent": "5", "message": "m"}, "percent: must be a number"),
        ({"percent": None, "message": "m"}, "percent: must be a number"),
        ({"percent": 5}, "message: is required"),
        ({"percent": 5, "message": ""}, "message: must not be empty"),
        ({"percent": 5, "message": "m", "subProgress": {"a": {"percent": 200}}},
         "subProgress.a.percent: must be at most 100"),
        ({"percent": 5, "message": "m", "subProgress": {"a": 3}}, "subProgress.a: must be a JSON object"),
        ({"percent": 5, "message": "m", "subProgress": {"int": {"percent": "x"}}},
         "subProgress.int.percent: must be a number"),  # a stage named like a union member
        ({"percent": 5, "message": "m", "subProgress": {"a": {"percent": 1, "sub_progress": 1}}},
         "subProgress.a.sub_progress: is not a known field"),  # no hint: not a stage's field
        ({"percent": 5, "message": "m", "sub_progress": {}},
         "sub_progress: is not a known field (did you mean 'subProgress'?)"),
    ],
)  # fmt: skip
async def test_progress_validation(http: httpx.AsyncClient, body: object, message: str) -> None:
    job_id = await create(http)
    await start(http, job_id)
    assert error(await call(http, job_id, "progress", body)) == (400, "invalid_request", message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"count": 0}, "count: must be at least 1"),
        ({"count": 51}, "count: must be at most 50"),
        ({"count": 10**30}, "count: must be at most 50"),
        ({"count": 1.5}, "count: must be an integer"),
        ({"count": "3"}, "count: must be an integer"),
        ({"count": True}, "count: must be an integer"),
        ({"count": None}, "count: must be an integer"),
        ({"types": []}, "types: must have at least 1 item"),
        ({"types": ["a"] * 101}, "types: must have at most 100 items"),
        ({"types": [""]}, "types.0: must not be empty"),
        ({"types": ["a", 1]}, "types.1: must be a string"),
        ({"types": [["a"]]}, "types.0: must be a string"),
        ({"type": {"a": 1}}, "type: must be a string or an array of strings"),
        ({"type": {"constrained-str": 1}}, "type: must be a string or an array of strings"),
        ({"type": 5}, "type: must be a string or an array of strings"),
        ({"names": True}, "names: must be a string or an array of strings"),
        ({"name": ""}, "name: must not be empty"),
        ({"name": "x" * 256}, "name: must be at most 255 characters"),
        ({"kind": "email"}, "kind: is not a known field"),
        ([], "body: must be a JSON object"),
        ({"count": 0, "types": []}, "count: must be at least 1; types: must have at least 1 item"),
    ],
)  # fmt: skip
async def test_poll_validation(http: httpx.AsyncClient, body: object, message: str) -> None:
    """Plain words, each field named once (pydantic tries each member of ``str | list``)."""
    job_id = await create(http)
    response = await http.post(f"/spaces/{SPACE}/jobs/poll", json=body)
    assert error(response) == (400, "invalid_request", message)
    assert (await job(http, job_id))["status"] == "pending"


@pytest.mark.parametrize(
    ("action", "body", "message"),
    [
        ("fail", {}, "error: is required"),
        ("fail", {"error": 3}, "error: must be a string"),
        ("checkpoint", [1], "body: must be a JSON object"),
        ("event", "x", "body: must be a JSON object"),
        ("complete", {"value": 1}, "value: is not a known field"),
        ("kill", {"reason": 1}, "reason: must be a string"),
        ("ack", [], "body: must be a JSON object"),
        ("keepalive", "x", "body: must be a JSON object"),
        ("claim", [1], "body: must be a JSON object"),
    ],
)
async def test_worker_call_validation(
    http: httpx.AsyncClient, action: str, body: object, message: str
) -> None:
    job_id = await create(http)
    await start(http, job_id)
    assert error(await call(http, job_id, action, body)) == (400, "invalid_request", message)
    assert (await job(http, job_id))["status"] == "running"


async def test_claim_ack_and_keepalive_ignore_the_fields_of_their_bodies(
    http: httpx.AsyncClient,
) -> None:
    """The service documents these bodies as ignored: fields there are not refused (400)."""
    job_id = await create(http)
    for action, body in [
        ("claim", {"job_id": "j", "workerId": "w"}),
        ("ack", {"attemptNumber": 0}),
        ("keepalive", {"workerId": "w", "at": [1, {"x": None}]}),
    ]:
        response = await call(http, job_id, action, body)
        assert response.status_code == 200, (action, response.text)
    assert (await job(http, job_id))["status"] == "running"
    bad = await http.post(f"/jobs/{job_id}/ack", content=b"{not json")
    assert error(bad)[:2] == (400, "invalid_request")  # JSON all the same
    complete = await call(http, job_id, "complete", {"value": 1})
    assert error(complete) == (400, "invalid_request", "value: is not a known field")


async def test_empty_bodies_are_fine_where_nothing_is_needed(http: httpx.AsyncClient) -> None:
    job_id = await create(http)
    for action in ["claim", "ack", "keepalive", "complete"]:
        assert (await http.post(f"/jobs/{job_id}/{action}")).status_code == 200, action
    job_id = await create(http)
    for action in ["claim", "ack", "keepalive"]:  # an empty object is an empty body too
        assert (await call(http, job_id, action, {})).status_code == 200, action
    assert (await job(http, job_id))["result"] is None
    other = await create(http)
    assert (await http.post(f"/jobs/{other}/kill")).status_code == 200
    assert (await job(http, other))["result"] == {"reason": None}


async def test_unknown_routes_and_methods(http: httpx.AsyncClient) -> None:
    assert error(await http.get("/nowhere"))[:2] == (404, "not_found")
    job_id = await create(http)
    assert error(await http.post(f"/jobs/{job_id}/explode"))[:2] == (404, "not_found")
    assert error(await http.delete(f"/jobs/{job_id}"))[:2] == (405, "method_not_allowed")


async def test_openapi_and_health_need_no_key(emit: EmitServer) -> None:
    async with client_for(emit, None) as anonymous:
        document = (await anonymous.get("/openapi.json")).json()
        assert document["openapi"].startswith("3.")
        assert "/jobs/{job_id}/complete" in document["paths"]
        health = await anonymous.get("http://emit.test/health")
        assert health.json() == {"status": "ok"}


async def test_nesting_up_to_the_limit_is_stored_and_read_back(http: httpx.AsyncClient) -> None:
    deepest = "[" * 62 + "]" * 62  # in {"payload": ...}: 64 levels, the limit
    body = '{"name": "deep", "payload": ' + deepest + "}"
    response = await http.post(f"/spaces/{SPACE}/jobs", content=body)
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    assert (await job(http, job_id))["payload"] == json.loads(deepest)
    claimed = await call(http, job_id, "claim")
    assert claimed.json()["payload"] == json.loads(deepest)


@pytest.mark.parametrize(
    ("action", "where"),
    [
        ("complete", '{"result": %s}'),
        ("checkpoint", '{"deep": %s}'),
        ("event", '{"deep": %s}'),
        ("progress", '{"percent": 1, "message": "m", "subProgress": %s}'),
    ],
)
async def test_too_deep_worker_bodies_are_refused_and_change_nothing(
    http: httpx.AsyncClient, action: str, where: str
) -> None:
    job_id = await create(http)
    await start(http, job_id)
    response = await http.post(f"/jobs/{job_id}/{action}", content=where % ("[" * 70 + "]" * 70))
    assert error(response) == (400, "invalid_request", "body: JSON nests deeper than 64 levels")
    document = await job(http, job_id)  # and every answer still renders
    assert (document["status"], document["checkpoint"], document["result"]) == (
        "running",
        None,
        None,
    )


@pytest.fixture
def default_recursion_limit() -> Iterator[None]:
    """Python's default limit, which an in-process mypy run earlier in a session raises
    (and with it, what JSON nests too deeply to be rendered)."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    yield
    sys.setrecursionlimit(before)


@pytest.mark.usefixtures("default_recursion_limit")
async def test_a_reply_that_cannot_be_rendered_leaves_the_job_pending(
    http: httpx.AsyncClient, emit: EmitServer
) -> None:
    """Poll and claim render their answer before committing: no delivery to nobody."""
    job_id = await create(http)
    ten_thousand_deep = "[" * 10_000 + "]" * 10_000  # older data, or a bug: not renderable
    emit.store.conn.execute("UPDATE jobs SET payload = ? WHERE id = ?", (ten_thousand_deep, job_id))
    transport = httpx.ASGITransport(app=emit.app, raise_app_exceptions=False)
    headers = {"x-api-key": ADMIN_KEY}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://emit.test/api/v1", headers=headers
    ) as client:
        for path in [f"/spaces/{SPACE}/jobs/poll", f"/jobs/{job_id}/claim"]:
            assert error(await client.post(path))[:2] == (500, "internal")
            row = emit.store.conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,))
            assert row.fetchone()["status"] == "pending"
        # nothing is left half-done: the next writes go through and are committed
        later = await client.post(f"/spaces/{SPACE}/jobs", json={"name": "after"})
        assert later.status_code == 201
        await emit.store.durable()
        row = emit.store.conn.execute("SELECT status FROM jobs WHERE id = ?", (later.json()["id"],))
        assert row.fetchone()["status"] == "pending"


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("claim", [1]),
        ("ack", "x"),
        ("keepalive", [1]),
        ("progress", {"percent": 500}),
        ("checkpoint", [1]),
        ("event", 3),
        ("complete", {"value": 1}),
        ("fail", {}),
        ("kill", {"reason": 1}),
    ],
)
async def test_unknown_job_is_404_even_with_a_bad_body(
    http: httpx.AsyncClient, emit: EmitServer, action: str, body: object
) -> None:
    assert error(await call(http, "01JNOSUCHJOB", action, body))[:2] == (404, "job_not_found")
    job_id = await create(http)  # of another space: 403 first, as for a good body
    async with client_for(emit, OTHER_KEY) as other:
        assert error(await call(other, job_id, action, body))[:2] == (403, "forbidden")
    async with client_for(emit, None) as anonymous:  # and 401 before everything
        assert error(await call(anonymous, "01JNOSUCHJOB", action, body))[:2] == (
            401,
            "unauthorized",
        )


async def test_unknown_job_is_404_for_bad_log_bodies_too(http: httpx.AsyncClient) -> None:
    for content, headers in [
        (b"not json\n", {}),
        (b"not gzip", {"content-encoding": "gzip"}),
        (b"{}", {"content-type": "image/png"}),
    ]:
        response = await http.post("/jobs/01JNOSUCHJOB/logs", content=content, headers=headers)
        assert error(response)[:2] == (404, "job_not_found"), content


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("9999-12-31T23:59:59-05:00", "must be between the years 1970 and 9999 (UTC)"),
        ("10000-01-01T00:00:00Z", "must be an ISO-8601 timestamp"),
        ("tomorrow", "must be an ISO-8601 timestamp"),
    ],
)
async def test_scheduled_for_outside_four_digit_years_is_refused(
    http: httpx.AsyncClient, value: str, message: str
) -> None:
    response = await http.post(f"/spaces/{SPACE}/jobs", json=[{"name": "a", "scheduledFor": value}])
    assert error(response) == (400, "invalid_request", f"[0].scheduledFor: {message}")


async def test_the_last_four_digit_year_is_fine(http: httpx.AsyncClient) -> None:
    job_id = await create(http, scheduledFor="9999-12-31T23:59:59.999Z")
    assert (await job(http, job_id))["scheduledFor"] == "9999-12-31T23:59:59.999Z"


async def test_realtime_url_follows_the_host_header(http: httpx.AsyncClient) -> None:
    for host in ["emit.test", "127.0.0.1:8787"]:  # ("[" is no host: see below)
        response = await http.post(
            f"/spaces/{SPACE}/jobs", json={"name": "t"}, headers={"host": host}
        )
        ref = response.json()
        assert ref["realtimeUrl"] == f"ws://{host}/api/v1/realtime/{ref['id']}"


@pytest.mark.parametrize(
    ("header", "echoed"),
    [
        ("jobs.example:8080", "jobs.example:8080"),
        ("my_service", "my_service"),
        ("[::1]:9000", "[::1]:9000"),
        ('a"b<script>', None),  # None: the server's own address instead
        ("evil.example/x?", None),
        ("h:1:2", None),
        ("h:port", None),
        ("[::1", None),
        ("[", None),
        ("", None),
    ],
)
async def test_urls_in_answers_echo_only_a_valid_host(
    live_server: LiveServer, header: str, echoed: str | None
) -> None:
    echoed = echoed or f"127.0.0.1:{live_server.port}"
    async with live_server.client() as http:
        host = {"host": header}
        response = await http.post(f"/spaces/{SPACE}/jobs", json={"name": "t"}, headers=host)
        index = await http.get(live_server.base_url.removesuffix("/api/v1") + "/", headers=host)
    ref = response.json()
    assert ref["realtimeUrl"] == f"ws://{echoed}/api/v1/realtime/{ref['id']}"
    assert index.json()["baseUrl"] == f"http://{echoed}/api/v1"
