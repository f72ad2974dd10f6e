"""Text UTF-8 cannot hold (a file name from ``os.fsdecode``) reaches the service written out.

A lone surrogate in a handler's error, its result, a log line, a progress message,
checkpoint or event data, or a push's fields is never a 500, never a crash and never a
job left running: it is stored as plain text, ``report-\\xff.csv``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from emit_push import EmitPush, Job, PushResult, SyncJob
from tests.conftest import SPACE
from tests.framework.conftest import create, event_types, job, logs, push

MakeApp = Callable[..., EmitPush]

FILE = os.fsdecode(b"report-\xff.csv")  # a Linux file name that is not UTF-8
WRITTEN = "report-\\xff.csv"  # how it is stored: the byte, written out
LONE = "half \ud800 a pair"  # a lone surrogate that is no byte of a file name
LONE_WRITTEN = "half \\ud800 a pair"


@pytest.fixture(params=["async", "sync"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def stored_error(document: dict[str, Any]) -> str:
    """The error a dead job was failed with, as the server keeps it."""
    assert document["status"] == "dead", document
    return str(document["result"]["error"])


async def test_an_error_naming_an_undecodable_file_fails_the_job(
    make_app: MakeApp, admin: httpx.AsyncClient, kind: str
) -> None:
    app = make_app()
    if kind == "async":

        @app.on_job("report")
        async def report(job: Job) -> None:
            raise RuntimeError(f"cannot open {FILE}")
    else:

        @app.on_job("report")
        def report_sync(job: SyncJob) -> None:
            raise RuntimeError(f"cannot open {FILE}")

    job_id = await create(admin, "report", maxRetries=0)
    result = await push(app, job_id, "report")
    error = f"RuntimeError: cannot open {WRITTEN}"
    assert (result.status, result.error) == ("failed", error)
    status, _, body = result.http()
    assert status == 200
    assert json.loads(body)["error"] == error
    assert stored_error(await job(admin, job_id)) == error


async def test_an_error_with_any_lone_surrogate_fails_the_job_and_retries(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()

    @app.on_job("report")
    async def report(job: Job) -> None:
        raise ValueError(LONE)

    job_id = await create(admin, "report", maxRetries=1)
    result = await push(app, job_id, "report")
    assert (result.status, result.error) == ("failed", f"ValueError: {LONE_WRITTEN}")
    document = await job(admin, job_id)
    assert document["status"] == "pending"  # failed back for its retry, not left running
    retried = [e for e in document["events"] if e["type"] == "retried"]
    assert retried[-1]["data"]["error"] == f"ValueError: {LONE_WRITTEN}"


async def test_a_result_holding_such_text_completes_written_out(
    make_app: MakeApp, admin: httpx.AsyncClient, kind: str
) -> None:
    app = make_app()
    result_value = {"file": FILE, "files": [FILE, (LONE,)], "nested": {"name": FILE}}
    if kind == "async":

        @app.on_job("list")
        async def listing(job: Job) -> dict[str, Any]:
            return result_value
    else:

        @app.on_job("list")
        def listing_sync(job: SyncJob) -> dict[str, Any]:
            return result_value

    job_id = await create(admin, "list", maxRetries=0)
    result = await push(app, job_id, "list")
    assert (result.status, result.http()[0]) == ("completed", 200)
    document = await job(admin, job_id)
    assert document["status"] == "completed"
    assert document["result"] == {
        "file": WRITTEN,
        "files": [WRITTEN, [LONE_WRITTEN]],
        "nested": {"name": WRITTEN},
    }


async def test_a_result_that_is_not_json_fails_the_job_saying_so(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()

    class Opaque:
        pass

    @app.on_job("opaque")
    async def opaque(job: Job) -> Any:
        return {"file": FILE, "handle": Opaque()}

    job_id = await create(admin, "opaque", maxRetries=0)
    result = await push(app, job_id, "opaque")
    assert (result.status, result.reason, result.http()[0]) == ("failed", "invalid result", 200)
    assert result.error is not None
    assert result.error.startswith("the result is not JSON: ")
    assert "Opaque" in result.error
    assert stored_error(await job(admin, job_id)) == result.error


async def test_log_lines_progress_checkpoint_and_event_are_stored_written_out(
    make_app: MakeApp, admin: httpx.AsyncClient, kind: str
) -> None:
    app = make_app()
    if kind == "async":

        @app.on_job("scan")
        async def scan(job: Job) -> str:
            job.log.info(f"found {FILE}", metadata={FILE: LONE}, source=FILE)
            await job.progress(50, f"reading {FILE}", sub_progress={FILE: {"percent": 50}})
            await job.checkpoint({"last": FILE, FILE: [LONE]})
            await job.event({"kind": "seen", "file": FILE})
            return "ok"
    else:

        @app.on_job("scan")
        def scan_sync(job: SyncJob) -> str:
            job.log.info(f"found {FILE}", metadata={FILE: LONE}, source=FILE)
            job.progress(50, f"reading {FILE}", sub_progress={FILE: {"percent": 50}})
            job.checkpoint({"last": FILE, FILE: [LONE]})
            job.event({"kind": "seen", "file": FILE})
            return "ok"

    job_id = await create(admin, "scan", maxRetries=0)
    result = await push(app, job_id, "scan")
    assert (result.status, result.http()[0]) == ("completed", 200)
    document = await job(admin, job_id)
    assert document["status"] == "completed"
    assert document["progress"]["message"] == f"reading {WRITTEN}"
    assert document["progress"]["subProgress"] == {WRITTEN: {"percent": 50}}
    assert document["checkpoint"] == {"last": WRITTEN, WRITTEN: [LONE_WRITTEN]}
    assert event_types(document) == [
        "created", "delivered", "running", "progress", "checkpoint", "event", "completed",
    ]  # fmt: skip
    event = next(e for e in document["events"] if e["type"] == "event")
    assert event["data"] == {"kind": "seen", "file": WRITTEN}
    assert await logs(admin, job_id) == [f"found {WRITTEN}"]
    page = (await admin.get(f"/jobs/{job_id}/logs")).json()
    (entry,) = page["logs"]
    assert (entry["source"], entry["metadata"]) == (WRITTEN, {WRITTEN: LONE_WRITTEN})


async def test_a_job_failed_by_hand_with_such_text_is_failed(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()

    @app.on_job("manual")
    async def manual(job: Job) -> None:
        await job.fail(f"bad file {FILE}")

    job_id = await create(admin, "manual", maxRetries=0)
    result = await push(app, job_id, "manual")
    assert (result.status, result.http()[0]) == ("failed", 200)
    assert stored_error(await job(admin, job_id)) == f"bad file {WRITTEN}"


@pytest.mark.parametrize("catch_all", [False, True])
async def test_a_push_naming_a_lone_surrogate_is_answered_not_a_500(
    make_app: MakeApp, admin: httpx.AsyncClient, catch_all: bool
) -> None:
    app = make_app()
    ran: list[str] = []

    @app.on_job("*" if catch_all else "greet")
    async def greet(job: Job) -> str:
        ran.append(job.name)
        return "hi"

    job_id = await create(admin, "greet")
    # The JSON escape for a lone surrogate: valid JSON, not valid Unicode.
    body = f'{{"type":"job.pending","jobId":"{job_id}","spaceId":"{SPACE}","name":"x\\udcff"}}'
    result = await app.handle_push(body.encode(), {})
    status, headers, content = result.http()
    assert status < 500
    assert ("content-type", "application/json") in headers
    answer = json.loads(content.decode("utf-8"))  # strict UTF-8: it decodes
    if catch_all:  # the name is a hint; the claimed job says its own
        assert (status, answer["status"], ran) == (200, "completed", ["greet"])
    else:
        assert (status, answer["status"], answer["name"]) == (200, "ignored", "x\\xff")
        assert (await job(admin, job_id))["status"] == "pending"  # not claimed


async def test_a_push_through_asgi_naming_a_lone_surrogate_is_not_a_500(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()

    @app.on_job("greet")
    async def greet(job: Job) -> str:
        return "hi"

    job_id = await create(admin, "greet")
    body = f'{{"jobId":"{job_id}","name":"\\ud800"}}'
    transport = httpx.ASGITransport(app=app.asgi())
    async with httpx.AsyncClient(transport=transport, base_url="http://push.test") as client:
        response = await client.post("/", content=body.encode())
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert response.json()["name"] == "\\ud800"


async def test_the_polling_loop_fails_such_a_job_and_goes_on(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()
    done: list[PushResult] = []
    stop = asyncio.Event()

    @app.on_job("report")
    async def report(job: Job) -> str:
        if job.payload == "bad":
            raise RuntimeError(f"cannot open {FILE}")
        return f"read {FILE}"

    bad = await create(admin, "report", "bad", maxRetries=0)
    good = await create(admin, "report", "good", maxRetries=0)

    def finished(result: PushResult) -> None:
        done.append(result)
        if len(done) == 2:
            stop.set()

    await asyncio.wait_for(
        app.run_polling(count=2, poll_interval=0.01, stop=stop, on_done=finished), 10
    )
    outcomes = {r.job_id: (r.status, r.error) for r in done}
    assert outcomes == {
        bad: ("failed", f"RuntimeError: cannot open {WRITTEN}"),
        good: ("completed", None),
    }
    assert stored_error(await job(admin, bad)) == f"RuntimeError: cannot open {WRITTEN}"
    document = await job(admin, good)
    assert (document["status"], document["result"]) == ("completed", f"read {WRITTEN}")


async def test_a_result_with_such_text_in_a_key_completes_written_out(
    make_app: MakeApp, admin: httpx.AsyncClient
) -> None:
    app = make_app()

    @app.on_job("index")
    async def index(job: Job) -> dict[str, Any]:
        return {FILE: {"size": 3}}

    job_id = await create(admin, "index", maxRetries=0)
    result = await push(app, job_id, "index")
    assert (result.status, result.http()[0]) == ("completed", 200)
    assert (await job(admin, job_id))["result"] == {WRITTEN: {"size": 3}}


async def test_a_huge_error_is_cut_and_the_job_still_fails(
    make_app: Any, admin: httpx.AsyncClient
) -> None:
    app = make_app()

    @app.on_job("verbose")
    async def verbose(job: Job) -> None:
        raise ValueError("x" * 200_000)  # far past any service's limit on an error

    job_id = await create(admin, "verbose", maxRetries=0)
    result = await push(app, job_id)
    assert result.status == "failed", result
    document = await job(admin, job_id)
    assert document["status"] == "dead"
    error = document["result"]["error"]
    assert error.startswith("ValueError: xxx")
    assert error.endswith("(200012 characters in all)")
    assert len(error) < 8100
