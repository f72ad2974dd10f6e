"""``client.workers``: push handlers made from a client, as in the TypeScript SDK."""

from __future__ import annotations

import httpx
import pytest

from emit_push import EmitClient, Job, SyncJob
from emit_push.server import EmitServer
from tests.conftest import ADMIN_KEY, SPACE, WORKER_KEY, LiveServer
from tests.framework.conftest import create, job, worker_client


async def test_a_return_value_alone_does_not_complete_as_in_the_typescript_sdk(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    client = worker_client(emit)
    job_id = await create(admin, "resize", {"width": 640})
    result = await client.workers.handle_push({"jobId": job_id}, on_job=lambda job: "ignored")
    assert result.status == "completed"  # the function ended well...
    assert (await job(admin, job_id))["status"] == "running"  # ...and left the job to it
    await client.aclose()


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
    for job_id, name in ((named, "resize"), (other, "anything")):
        body = f'{{"jobId": "{job_id}", "name": "{name}"}}'.encode()
        assert (await app.handle_push(body, {})).status == "completed"
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
