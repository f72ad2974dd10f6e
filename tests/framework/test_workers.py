"""``client.workers``: push handlers made from a client, as in the TypeScript SDK."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest

from emit_push import EmitClient, Job, PushResult, RateLimitError, SyncJob
from emit_push.server import EmitServer
from tests.conftest import ADMIN_KEY, SPACE, WORKER_KEY, LiveServer
from tests.framework.conftest import create, job, worker_client


async def test_a_return_value_alone_does_not_complete_as_in_the_typescript_sdk(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    client = worker_client(emit)
    job_id = await create(admin, "resize", {"width": 640})
    result = await client.workers.handle_push({"jobId": job_id}, on_job=lambda job: "ignored")
    assert result.body() == {  # the answer says the job was left running, not completed
        "status": "running",
        "jobId": job_id,
        "name": "resize",
        "attemptNumber": 0,
        "reason": "left to the handler (auto_complete is off)",
    }
    assert (await job(admin, job_id))["status"] == "running"  # ...as it is
    await client.aclose()


async def test_a_push_handler_takes_the_parsed_payload_as_the_typescript_sdk(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    """``handler.handle_push(payload)``: the push's parsed body, authenticated by the
    caller (no secret is checked: there are no headers), validated, claimed and run."""
    client = worker_client(emit)

    async def resize(job: Job) -> None:
        await job.complete({"width": job.payload["width"] // 2})

    handler = client.workers.create_push_handler(resize, push_secret="s3cret")
    job_id = await create(admin, "resize", {"width": 640})
    payload = {"type": "job.pending", "jobId": job_id, "name": "resize", "attemptNumber": 0}
    result = await handler.handle_push(payload)
    assert result.body() == {
        "status": "completed",
        "jobId": job_id,
        "name": "resize",
        "attemptNumber": 0,
    }
    assert (await job(admin, job_id))["result"] == {"width": 320}
    duplicate = await handler.handle_push(payload)  # claims decide, as for any push
    assert (duplicate.status, duplicate.reason) == ("skipped", "already claimed")
    await client.aclose()


async def test_a_push_handler_checks_the_payload_before_any_claim(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    client = worker_client(emit)
    handler = client.workers.create_push_handler(lambda job: None, push_secret=None)
    job_id = await create(admin, "resize")
    for payload, error in [
        ({"name": "resize"}, "jobId: a non-empty string is required"),
        ({"jobId": job_id, "type": "job.done"}, "type: expected 'job.pending', got 'job.done'"),
        ({"jobId": job_id, "at": float("nan")}, "the payload is not JSON: "),
        ({"jobId": job_id, "at": object()}, "the payload is not JSON: "),
        (b"{not json", "body is not valid JSON"),
    ]:
        refused = await handler.handle_push(payload)
        assert (refused.status, refused.http_status, refused.code) == (None, 400, "invalid_push")
        assert str(refused.error).startswith(error)
    assert (await job(admin, job_id))["status"] == "pending"  # never claimed
    await client.aclose()


async def test_a_push_handler_with_headers_checks_the_secret_in_them(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    """The raw form (body and headers, as adapters pass them) checks the push secret; so
    does the parsed payload given with its request's headers."""
    client = worker_client(emit)
    handler = client.workers.create_push_handler(
        lambda job: {"handled": job.name}, push_secret="s3cret", auto_complete=True
    )
    job_id = await create(admin, "anything")
    payload = {"jobId": job_id}
    body = json.dumps(payload).encode()
    good = {"Authorization": "Bearer s3cret"}
    for refused in [
        await handler.handle_push(body, {}),
        await handler.handle_push(payload, {}),
        await handler.handle_push(payload, {"Authorization": "Bearer wrong"}),
    ]:
        assert (refused.http_status, refused.code) == (401, "unauthorized")
    assert (await job(admin, job_id))["status"] == "pending"
    assert (await handler.handle_push(payload, good)).status == "completed"
    assert (await job(admin, job_id))["result"] == {"handled": "anything"}
    other = await create(admin, "anything")
    assert (await handler.handle_push(f'{{"jobId": "{other}"}}'.encode(), good)).status == (
        "completed"
    )
    await client.aclose()


def test_a_sync_clients_push_handler_takes_the_parsed_payload(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.base_url, headers={"x-api-key": ADMIN_KEY}) as admin:
        job_id = admin.post(
            f"/spaces/{SPACE}/jobs", json={"name": "sum", "payload": [1, 2]}
        ).json()["id"]
        with EmitClient(
            space_id=SPACE, api_key=WORKER_KEY, base_url=live_server.base_url
        ) as client:
            handler = client.workers.create_push_handler(
                lambda job: sum(job.payload), auto_complete=True
            )

            async def serve() -> PushResult:
                try:
                    return await handler.handle_push({"jobId": job_id})
                finally:
                    await handler.aclose()

            result = asyncio.run(serve())
        assert (result.status, result.name) == ("completed", "sum")
        assert admin.get(f"/jobs/{job_id}").json()["result"] == 3


async def test_async_handle_push_runs_the_function(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    client = worker_client(emit)

    async def resize(job: Job) -> None:
        await job.progress(50, "halfway")
        await job.complete({"width": job.payload["width"] // 2})  # the SDK's way: no auto_complete

    job_id = await create(admin, "resize", {"width": 640})
    result = await client.workers.handle_push({"jobId": job_id, "name": "resize"}, on_job=resize)
    assert (result.status, result.name) == ("completed", "resize")
    assert (await job(admin, job_id))["result"] == {"width": 320}
    await client.aclose()


async def test_a_push_handler_checks_its_secret_and_serves_asgi(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    client = worker_client(emit)
    handler = client.workers.create_push_handler(
        lambda job: {"handled": job.name}, push_secret="s3cret", auto_complete=True
    )
    job_id = await create(admin, "anything")
    body = f'{{"jobId": "{job_id}"}}'.encode()
    refused = await handler.handle_push(body, {})
    assert refused.http_status == 401
    transport = httpx.ASGITransport(app=handler.asgi())
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        answer = await http.post("/", content=body, headers={"authorization": "Bearer s3cret"})
    assert answer.json()["status"] == "completed"
    assert (await job(admin, job_id))["result"] == {"handled": "anything"}
    await client.aclose()


def test_sync_client_handle_push(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.base_url, headers={"x-api-key": ADMIN_KEY}) as admin:
        job_id = admin.post(
            f"/spaces/{SPACE}/jobs", json={"name": "sum", "payload": [1, 2]}
        ).json()["id"]
        with EmitClient(
            space_id=SPACE, api_key=WORKER_KEY, base_url=live_server.base_url
        ) as client:

            def total(job: SyncJob) -> None:
                job.log.info("adding")
                job.complete(sum(job.payload))

            result = client.workers.handle_push({"jobId": job_id}, on_job=total)
        assert (result.status, result.name) == ("completed", "sum")
        assert admin.get(f"/jobs/{job_id}").json()["result"] == 3
        logs = admin.get(f"/jobs/{job_id}/logs").json()["logs"]
        assert [entry["message"] for entry in logs] == ["adding"]


def test_unknown_options_are_refused(live_server: LiveServer) -> None:
    with (
        EmitClient(space_id=SPACE, api_key=WORKER_KEY, base_url=live_server.base_url) as client,
        pytest.raises(TypeError, match="colour"),
    ):
        client.workers.create_push_handler(lambda job: None, colour="red")


def test_a_push_handler_takes_its_secret_from_the_environment(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMIT_PUSH_SECRET", "from-env")
    with EmitClient(space_id=SPACE, api_key=WORKER_KEY, base_url=live_server.base_url) as client:
        handler = client.workers.create_push_handler(lambda job: None)
        assert handler.push_auth.accepts({"authorization": "Bearer from-env"})
        assert not handler.push_auth.accepts({})
        explicit = client.workers.create_push_handler(lambda job: None, push_secret=None)
        assert not explicit.push_auth.enabled  # None: no check, as asked


async def test_the_sdk_defaults_are_the_functions_alone(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    """A handler added to a push handler's app later gets EmitPush's defaults (it completes
    with its return value); only ``on_job`` gets the TypeScript SDK's."""
    client = worker_client(emit)
    app = client.workers.create_push_handler(lambda job: "ignored", push_secret=None)

    @app.on_job("resize")
    async def resize(job: Job) -> dict[str, int]:
        return {"width": 320}

    named = await create(admin, "resize")
    other = await create(admin, "anything")
    for job_id, name, status in ((named, "resize", "completed"), (other, "anything", "running")):
        body = f'{{"jobId": "{job_id}", "name": "{name}"}}'.encode()
        assert (await app.handle_push(body, {})).status == status
    assert (await job(admin, named))["status"] == "completed"
    assert (await job(admin, other))["status"] == "running"  # left to the function
    await app.aclose()
    await client.aclose()


def test_unknown_options_are_refused_at_the_call() -> None:
    client = EmitClient(space_id=SPACE, api_key=WORKER_KEY, base_url="http://127.0.0.1:9/api/v1")
    with pytest.raises(TypeError, match=r"create_push_handler: unknown job options \['payload'\]"):
        client.workers.create_push_handler(lambda job: None, payload=int)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"run_polling: unknown options \['cout'\]"):
        client.workers.run_polling(on_job=lambda job: None, cout=4)  # type: ignore[call-arg]
    client.close()


class Recording(httpx.BaseTransport):
    """A sync transport that records every request; the first poll is answered 429."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.requests: list[httpx.Request] = []
        self.throttle = 1

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/jobs/poll") and self.throttle:
            self.throttle -= 1
            return httpx.Response(429, json={"error": "slow down", "code": "rate_limited"})
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_sync_workers_use_the_clients_headers_timeout_retries_and_transport(
    live_server: LiveServer,
) -> None:
    transport = Recording()
    stop = threading.Event()
    errors: list[BaseException] = []
    with httpx.Client(base_url=live_server.base_url, headers={"x-api-key": ADMIN_KEY}) as admin:
        polled, pushed = (
            admin.post(f"/spaces/{SPACE}/jobs", json={"name": name, "payload": [2, n]}).json()["id"]
            for name, n in (("sum", 3), ("add", 4))  # the loop takes only "sum"
        )
        with EmitClient(
            space_id=SPACE,
            api_key=WORKER_KEY,
            base_url=live_server.base_url,
            headers={"x-deployment": "blue"},
            timeout=7,
            max_retries=0,
            transport=transport,
        ) as client:

            def total(job: SyncJob) -> None:
                job.complete(sum(job.payload))
                if job.id == polled:
                    stop.set()

            client.workers.run_polling(
                on_job=total,
                types="sum",
                count=1,
                on_error=lambda exc, job: errors.append(exc),
                poll_interval=0.01,
                stop=stop,
                handle_signals=False,
            )
            result = client.workers.handle_push({"jobId": pushed}, on_job=total)
        assert result.status == "completed"
        assert [admin.get(f"/jobs/{i}").json()["result"] for i in (polled, pushed)] == [5, 6]
    assert [type(exc) for exc in errors] == [RateLimitError]  # max_retries=0: not retried
    calls = {request.url.path.rsplit("/", 1)[-1] for request in transport.requests}
    assert {"poll", "ack", "complete", "claim"} <= calls  # the polled job's and the pushed one's
    assert {r.headers["x-deployment"] for r in transport.requests} == {"blue"}
    timeouts = {tuple(r.extensions["timeout"].items()) for r in transport.requests}
    assert timeouts == {tuple(httpx.Timeout(7).as_dict().items())}
