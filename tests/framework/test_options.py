"""Per-handler options over the app's defaults, the module-level ``on_job`` and its
default app, typed payloads (TypedDict, ``list[int]``), and ``app.asgi()`` mounted in
Starlette and FastAPI: all against the in-process emit server.

API calls are counted by a recording transport between the worker's client and the
server (keepalives leave no event on the server), and the tests wait on those calls,
never on a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount
from typing_extensions import TypedDict

import emit_push
import emit_push._framework.app
from emit_push import AsyncEmitClient, EmitPush, Job, LoggerOptions, SyncJob
from emit_push.server import EmitServer
from tests.conftest import SPACE
from tests.framework.conftest import create, event_types, job, logs, push, worker_client

MakeApp = Callable[..., EmitPush]
WAIT = 10.0  # seconds before a wait on an event counts as a failure (never reached when green)


class Recorder(httpx.AsyncBaseTransport):
    """The worker's API calls, in order, as ``(method, path)``; ``wait_for`` an amount."""

    def __init__(self, emit: EmitServer) -> None:
        self.inner = httpx.ASGITransport(app=emit.app)
        self.calls: list[tuple[str, str]] = []
        self._changed = asyncio.Condition()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.calls.append((request.method, request.url.path))
        async with self._changed:  # counted once the server has answered
            self._changed.notify_all()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    def count(self, job_id: str, action: str) -> int:
        path = f"/api/v1/jobs/{job_id}/{action}"
        return sum(1 for method, p in self.calls if method == "POST" and p == path)

    async def wait_for(self, job_id: str, action: str, at_least: int) -> None:
        async def reached() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: self.count(job_id, action) >= at_least)

        await asyncio.wait_for(reached(), WAIT)


@pytest.fixture
def recorder(emit: EmitServer) -> Recorder:
    return Recorder(emit)


@pytest.fixture
def recorded_app(
    make_app: MakeApp, emit: EmitServer, recorder: Recorder
) -> Callable[..., EmitPush]:
    """``recorded_app(**options)``: make_app, its API calls seen by ``recorder``."""
    return lambda **options: make_app(client=worker_client(emit, transport=recorder), **options)


@pytest.fixture(params=["async", "sync"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- auto_ack -------------------------------------------------------------------------


async def test_auto_ack_off_on_the_handler_lets_the_function_ack(
    recorded_app: MakeApp, recorder: Recorder, admin: httpx.AsyncClient, kind: str
) -> None:
    app = recorded_app()  # the app acks
    before: list[str] = []
    loop = asyncio.get_running_loop()

    async def status_now(job_id: str) -> str:
        return str((await job(admin, job_id))["status"])

    if kind == "async":

        @app.on_job("manual", auto_ack=False)
        async def manual(job: Job) -> str:
            before.append(await status_now(job.id))
            await job.ack()
            return "done"
    else:

        @app.on_job("manual", auto_ack=False)
        def manual_sync(job: SyncJob) -> str:
            before.append(asyncio.run_coroutine_threadsafe(status_now(job.id), loop).result(WAIT))
            job.ack()
            return "done"

    job_id = await create(admin, "manual")
    assert (await push(app, job_id, "manual")).status == "completed"
    assert before == ["delivered"]  # the framework did not ack before the function ran
    assert recorder.count(job_id, "ack") == 1  # the function's own
    document = await job(admin, job_id)
    assert (document["status"], document["result"]) == ("completed", "done")
    assert event_types(document).count("running") == 1


async def test_auto_ack_off_on_the_handler_and_no_ack_leaves_the_job_delivered(
    recorded_app: MakeApp, recorder: Recorder, admin: httpx.AsyncClient
) -> None:
    app = recorded_app()
    ran: list[str] = []

    @app.on_job("idle", auto_ack=False, auto_complete=False)
    async def idle(job: Job) -> None:
        ran.append(job.id)

    job_id = await create(admin, "idle")
    result = await push(app, job_id, "idle")
    assert (result.status, result.reason) == (  # the answer says how the job was left
        "delivered",
        "left to the handler (auto_ack and auto_complete are off)",
    )
    assert ran == [job_id]
    assert recorder.count(job_id, "ack") == 0
    assert recorder.count(job_id, "complete") == 0
    document = await job(admin, job_id)
    assert document["status"] == "delivered"
    assert "running" not in event_types(document)


async def test_auto_ack_on_the_handler_over_an_app_without(
    recorded_app: MakeApp, recorder: Recorder, admin: httpx.AsyncClient
) -> None:
    app = recorded_app(auto_ack=False)

    @app.on_job("acked", auto_ack=True)
    async def acked(job: Job) -> str:
        return "ok"

    @app.on_job("unacked")
    async def unacked(job: Job) -> None: ...

    job_id = await create(admin, "acked")
    assert (await push(app, job_id, "acked")).status == "completed"
    assert recorder.count(job_id, "ack") == 1
    assert (await job(admin, job_id))["status"] == "completed"
    other = await create(admin, "unacked")
    await push(app, other, "unacked")
    assert recorder.count(other, "ack") == 0  # the app's default still holds for the rest


# -- auto_fail_on_error ---------------------------------------------------------------


async def test_auto_fail_on_error_off_on_the_handler_leaves_the_job_running(
    recorded_app: MakeApp, recorder: Recorder, admin: httpx.AsyncClient, kind: str
) -> None:
    app = recorded_app()  # the app fails jobs on errors
    if kind == "async":

        @app.on_job("oops", auto_fail_on_error=False)
        async def oops(job: Job) -> None:
            raise ValueError("left to me")

        @app.on_job("failing")
        async def failing(job: Job) -> None:
            raise ValueError("app default")
    else:

        @app.on_job("oops", auto_fail_on_error=False)
        def oops_sync(job: SyncJob) -> None:
            raise ValueError("left to me")

        @app.on_job("failing")
        def failing_sync(job: SyncJob) -> None:
            raise ValueError("app default")

    job_id = await create(admin, "oops")
    result = await push(app, job_id, "oops")
    assert (result.status, result.error) == ("failed", "ValueError: left to me")
    assert result.reason == "left running: auto_fail_on_error is off"
    assert recorder.count(job_id, "fail") == 0
    document = await job(admin, job_id)
    assert (document["status"], document["attemptNumber"]) == ("running", 0)
    other = await create(admin, "failing")
    assert (await push(app, other, "failing")).status == "failed"
    assert recorder.count(other, "fail") == 1  # the app's default for the other handler


# -- keepalive_interval ---------------------------------------------------------------


@pytest.mark.parametrize("explicit", ["number-over-app-none", "none-over-app-number"])
async def test_keepalive_interval_on_the_handler_overrides_the_app(
    recorded_app: MakeApp, recorder: Recorder, admin: httpx.AsyncClient, explicit: str
) -> None:
    """Two jobs run side by side: ``ticking`` at 0.05 s, ``silent`` with none; one of the
    two has it from the app, the other from its own option. ``silent`` runs for as long
    as ``ticking`` takes to send three keepalives after ``silent`` started."""
    if explicit == "number-over-app-none":
        app = recorded_app(keepalive_interval=None)
        ticking_options: dict[str, Any] = {"keepalive_interval": 0.05}
        silent_options: dict[str, Any] = {}
    else:
        app = recorded_app(keepalive_interval=0.05)
        ticking_options = {}
        silent_options = {"keepalive_interval": None}
    silent_started = asyncio.Event()
    ticked = asyncio.Event()

    @app.on_job("ticking", **ticking_options)
    async def ticking(job: Job) -> int:
        await asyncio.wait_for(silent_started.wait(), WAIT)
        baseline = recorder.count(job.id, "keepalive")
        await recorder.wait_for(job.id, "keepalive", baseline + 3)
        ticked.set()
        return recorder.count(job.id, "keepalive")

    @app.on_job("silent", **silent_options)
    async def silent(job: Job) -> None:
        silent_started.set()
        await asyncio.wait_for(ticked.wait(), WAIT)

    ticking_id = await create(admin, "ticking")
    silent_id = await create(admin, "silent")
    results = await asyncio.gather(push(app, ticking_id, "ticking"), push(app, silent_id, "silent"))
    assert [r.status for r in results] == ["completed", "completed"]
    assert recorder.count(ticking_id, "keepalive") >= 3
    assert recorder.count(silent_id, "keepalive") == 0
    assert recorder.count(silent_id, "complete") == 1  # the calls were seen at all


# -- stop_on_error --------------------------------------------------------------------


async def test_stop_on_error_on_the_handler_overrides_the_app(
    recorded_app: MakeApp, recorder: Recorder, admin: httpx.AsyncClient
) -> None:
    app = recorded_app(stop_on_error=False)

    @app.on_job("loud", stop_on_error=True)
    async def loud(job: Job) -> None:
        raise RuntimeError("loud")

    @app.on_job("quiet")
    async def quiet(job: Job) -> None:
        raise RuntimeError("quiet")

    job_id = await create(admin, "loud")
    with pytest.raises(RuntimeError, match="loud"):
        await push(app, job_id, "loud")
    assert recorder.count(job_id, "fail") == 1  # failed first, then re-raised
    assert (await job(admin, job_id))["attemptNumber"] == 1
    other = await create(admin, "quiet")
    assert (await push(app, other, "quiet")).status == "failed"  # no raise: the app's default

    stopping = recorded_app(stop_on_error=True)

    @stopping.on_job("calm", stop_on_error=False)
    async def calm(job: Job) -> None:
        raise RuntimeError("calm")

    calm_id = await create(admin, "calm")
    result = await push(stopping, calm_id, "calm")
    assert (result.status, result.error) == ("failed", "RuntimeError: calm")


# -- on_error -------------------------------------------------------------------------


async def test_on_error_on_the_handler_replaces_the_apps(
    recorded_app: MakeApp, admin: httpx.AsyncClient, kind: str
) -> None:
    seen: list[tuple[str, str, str]] = []
    app = recorded_app(on_error=lambda exc, job: seen.append(("app", str(exc), job.id)))

    def own(exc: BaseException, job: Any) -> None:
        seen.append(("own", str(exc), job.id))

    if kind == "async":

        @app.on_job("mine", on_error=own)
        async def mine(job: Job) -> None:
            raise ValueError("mine")

        @app.on_job("off", on_error=None)
        async def off(job: Job) -> None:
            raise ValueError("off")

        @app.on_job("inherited")
        async def inherited(job: Job) -> None:
            raise ValueError("inherited")
    else:

        @app.on_job("mine", on_error=own)
        def mine_sync(job: SyncJob) -> None:
            raise ValueError("mine")

        @app.on_job("off", on_error=None)
        def off_sync(job: SyncJob) -> None:
            raise ValueError("off")

        @app.on_job("inherited")
        def inherited_sync(job: SyncJob) -> None:
            raise ValueError("inherited")

    ids = {}
    for name in ("mine", "off", "inherited"):
        ids[name] = await create(admin, name)
        assert (await push(app, ids[name], name)).status == "failed"
    assert seen == [("own", "mine", ids["mine"]), ("app", "inherited", ids["inherited"])]


# -- logger ---------------------------------------------------------------------------


async def test_logger_on_the_handler_sets_the_source_of_its_lines(
    recorded_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = recorded_app(logger=LoggerOptions(source="app"))

    @app.on_job("resizer", logger=LoggerOptions(source="resizer", gzip=False))
    async def resizer(job: Job) -> None:
        job.log.info("own source")
        job.log.info("given source", source="explicit")

    @app.on_job("plain")
    async def plain(job: Job) -> None:
        job.log.info("app source")

    async def sources(job_id: str) -> list[tuple[str, str | None]]:
        page = (await admin.get(f"/jobs/{job_id}/logs", params={"limit": 1000})).json()
        return [(entry["message"], entry["source"]) for entry in page["logs"]]

    resized = await create(admin, "resizer")
    assert (await push(app, resized, "resizer")).status == "completed"
    assert await sources(resized) == [("own source", "resizer"), ("given source", "explicit")]
    other = await create(admin, "plain")
    assert (await push(app, other, "plain")).status == "completed"
    assert await sources(other) == [("app source", "app")]


# -- the module-level on_job and the default app --------------------------------------


@pytest.fixture
def fresh_default_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """No default app before the test, and the previous one (or none) back after it."""
    monkeypatch.delenv("EMIT_PUSH_SECRET", raising=False)
    monkeypatch.setattr(emit_push._framework.app, "_default", None)


@pytest.mark.usefixtures("fresh_default_app")
async def test_module_level_on_job_registers_on_the_default_app(
    emit: EmitServer, admin: httpx.AsyncClient
) -> None:
    ran: list[dict[str, Any]] = []

    @emit_push.on_job("one-file")
    async def one_file(job: Job) -> str:
        ran.append(job.payload)
        job.log.info("from the default app")
        return "done"

    @emit_push.on_job("manual-one-file", auto_complete=False)
    async def manual_one_file(job: Job) -> str:
        return "not sent"

    default = emit_push.default_app()
    assert default is emit_push.default_app()  # made once
    assert isinstance(default, EmitPush)
    assert default.handlers["one-file"].func is one_file
    assert default.handlers["manual-one-file"].options["auto_complete"] is False
    client = worker_client(emit)
    app = default.with_client(client)
    try:
        job_id = await create(admin, "one-file", {"n": 1})
        assert (await push(app, job_id, "one-file")).status == "completed"
        assert ran == [{"n": 1}]
        document = await job(admin, job_id)
        assert (document["status"], document["result"]) == ("completed", "done")
        assert await logs(admin, job_id) == ["from the default app"]
        left = await create(admin, "manual-one-file")
        assert (await push(app, left, "manual-one-file")).status == "running"
        assert (await job(admin, left))["status"] == "running"  # its option held
    finally:
        await client.aclose()


# -- typed payloads -------------------------------------------------------------------


def stored_error(document: dict[str, Any]) -> str:
    """The error a dead job was failed with, as the server keeps it (result and event)."""
    assert document["status"] == "dead"
    last = document["events"][-1]
    assert (last["type"], last["data"]) == ("dead", document["result"])
    return str(document["result"]["error"])


class Resize(TypedDict):
    url: str
    width: int


async def test_a_typeddict_payload_is_validated(
    make_app: MakeApp, admin: httpx.AsyncClient, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    seen: list[Any] = []
    if kind == "async":

        @app.on_job("resize")
        async def resize(job: Job[Resize]) -> int:
            seen.append(job.payload)
            return job.payload["width"] // 2
    else:

        @app.on_job("resize")
        def resize_sync(job: SyncJob[Resize]) -> int:
            seen.append(job.payload)
            return job.payload["width"] // 2

    job_id = await create(admin, "resize", {"url": "s3://a", "width": "640"})
    assert (await push(app, job_id, "resize")).status == "completed"
    assert seen == [{"url": "s3://a", "width": 640}]  # "640" was validated into an int
    assert (await job(admin, job_id))["result"] == 320

    bad = await create(admin, "resize", {"url": "s3://a"}, maxRetries=0)
    with caplog.at_level(logging.WARNING, logger="emit_push.run"):
        result = await push(app, bad, "resize")
    message = "invalid payload (Resize): width: Field required"
    assert (result.status, result.error, result.reason) == ("failed", message, "invalid payload")
    assert len(seen) == 1  # not run
    # Told where a user looks: the process's log and the job's own logs.
    [record] = [r for r in caplog.records if r.name == "emit_push.run"]
    assert record.getMessage() == f"job resize {bad} (attempt 0) not run: {message}"
    assert await logs(admin, bad) == [message]
    document = await job(admin, bad)
    assert document["status"] == "dead"
    assert stored_error(document) == message


async def test_a_list_payload_is_validated(make_app: MakeApp, admin: httpx.AsyncClient) -> None:
    app = make_app()
    seen: list[Any] = []

    @app.on_job("sum")
    async def total(job: Job[list[int]]) -> int:
        seen.append(job.payload)
        return sum(job.payload)

    job_id = await create(admin, "sum", [1, "2", 3])
    assert (await push(app, job_id, "sum")).status == "completed"
    assert seen == [[1, 2, 3]]
    assert (await job(admin, job_id))["result"] == 6

    bad = await create(admin, "sum", [1, "two"], maxRetries=0)
    result = await push(app, bad, "sum")
    message = (
        "invalid payload (list[int]): 1: Input should be a valid integer,"
        " unable to parse string as an integer"
    )
    assert (result.status, result.error) == ("failed", message)
    not_a_list = await create(admin, "sum", {"a": 1}, maxRetries=0)
    other = await push(app, not_a_list, "sum")
    assert other.error == "invalid payload (list[int]): payload: Input should be a valid list"
    assert seen == [[1, 2, 3]]
    assert stored_error(await job(admin, bad)) == message
    assert stored_error(await job(admin, not_a_list)) == other.error


# -- app.asgi() mounted in Starlette and FastAPI --------------------------------------


@pytest.fixture(params=["starlette", "fastapi"])
def host(request: pytest.FixtureRequest) -> Callable[[EmitPush], Any]:
    """Mount ``app.asgi()`` at ``/emit`` in a plain Starlette app or in FastAPI."""
    if request.param == "starlette":
        return lambda app: Starlette(routes=[Mount("/emit", app=app.asgi())])

    def fastapi(app: EmitPush) -> FastAPI:
        api = FastAPI()
        api.mount("/emit", app.asgi())
        return api

    return fastapi


@pytest.fixture
async def mounted(
    make_app: MakeApp, host: Callable[[EmitPush], Any]
) -> AsyncIterator[tuple[EmitPush, httpx.AsyncClient]]:
    app = make_app(push_secret="s3cret")
    transport = httpx.ASGITransport(app=host(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://web.test") as http:
        yield app, http


async def test_a_mounted_app_takes_pushes_and_answers_health(
    mounted: tuple[EmitPush, httpx.AsyncClient], admin: httpx.AsyncClient
) -> None:
    app, http = mounted
    runs: list[str] = []

    @app.on_job("mounted")
    async def run(job: Job) -> dict[str, str]:
        runs.append(job.id)
        return {"via": "mount"}

    health = await http.get("/emit/health")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    job_id = await create(admin, "mounted")
    body = {"type": "job.pending", "jobId": job_id, "spaceId": SPACE, "name": "mounted"}
    refused = await http.post("/emit/", content=json.dumps(body))
    assert refused.status_code == 401  # the app's push secret holds under the mount
    assert runs == []
    answer = await http.post(
        "/emit/", content=json.dumps(body), headers={"Authorization": "Bearer s3cret"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "completed"
    assert answer.json()["jobId"] == job_id
    assert runs == [job_id]
    assert (await job(admin, job_id))["result"] == {"via": "mount"}
    assert (await http.get("/health")).status_code == 404  # only under the mount


async def test_a_typo_in_run_polling_is_refused_before_the_settings_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EMIT_SPACE_ID", raising=False)
    app = EmitPush(push_secret=None)  # no space, no key: prepare() would refuse
    with pytest.raises(TypeError, match=r"run_polling: unknown options \['cout'\]"):
        await app.run_polling(cout=4)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"on_job: unknown job options \['auto_ak'\]"):
        app.on_job("x", auto_ak=False)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"EmitPush: unknown job options \['autoack'\]"):
        EmitPush(autoack=False)  # type: ignore[call-arg]


async def test_the_apps_options_are_read_only_and_copies_keep_their_class() -> None:
    class MyApp(EmitPush):
        pass

    app = MyApp(space_id=SPACE, api_key="k", base_url="http://127.0.0.1:9/api/v1", max_runtime=5)
    assert app.options["max_runtime"] == 5
    with pytest.raises(TypeError):
        app.options["max_runtime"] = -1  # type: ignore[index]
    client = AsyncEmitClient(space_id=SPACE, api_key="k", base_url="http://127.0.0.1:9/api/v1")
    bound = app.with_client(client)
    assert type(bound) is MyApp
    assert bound.options["max_runtime"] == 5
    assert bound.client() is client
    assert app.runner.given_client is None  # the app itself was not changed
    await client.aclose()
