"""Every Python block of the README runs, top to bottom in one namespace, against the
local emit server; then what they built is used for real."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, SPACE, LiveServer

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_python_examples() -> None:
    assert len(python_blocks()) >= 6


async def test_readme_examples_run(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMIT_SPACE_ID", SPACE)
    monkeypatch.setenv("EMIT_API_KEY", ADMIN_KEY)  # the SDK example creates and works
    monkeypatch.setenv("EMIT_BASE_URL", live_server.base_url)
    monkeypatch.setenv("EMIT_PUSH_SECRET", "readme-secret")
    namespace: dict[str, Any] = {"__name__": "readme"}
    for number, block in enumerate(python_blocks(), start=1):
        exec(compile(block, f"README.md python block {number}", "exec"), namespace)

    async with httpx.AsyncClient(
        base_url=live_server.base_url, headers={"x-api-key": ADMIN_KEY}
    ) as admin:
        # The FastAPI app of the README, with the resize handler and the middleware.
        transport = httpx.ASGITransport(app=namespace["api"])
        ref = (
            await admin.post(
                f"/spaces/{SPACE}/jobs",
                json={"name": "resize", "payload": {"url": "s3://a", "width": 64}},
            )
        ).json()
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as web:
            answer = await web.post(
                "/emit/",
                content=json.dumps({"jobId": ref["id"], "name": "resize"}),
                headers={"authorization": "Bearer readme-secret"},
            )
        assert answer.json()["status"] == "completed"
        job = (await admin.get(f"/jobs/{ref['id']}")).json()
        assert job["result"] == {"thumbnail": "s3://a?w=64"}
        assert namespace["durations"]["resize"]  # the middleware measured the run

        # The SDK example: creates a job and works it by polling.
        await namespace["enqueue_and_work"]()
        jobs = (await admin.get(f"/spaces/{SPACE}/jobs", params={"status": "completed"})).json()
        assert any(j["result"] == {"ok": True} for j in jobs)

        # The realtime example, on the finished job: the anonymous view's init, then the end.
        assert await namespace["follow"](ref["id"]) == ["init"]

    # The testing examples: a recording job, then the local server in-process.
    await namespace["test_resize"]()
    from emit_push.testing import LocalEmit

    async with LocalEmit() as local:
        await namespace["test_resize_end_to_end"](local)
    assert callable(namespace["main"])  # the polling worker's entry point
    assert namespace["pytest_plugins"] == ["emit_push.testing.pytest_plugin"]
    assert callable(namespace["handler"])
    assert callable(namespace["emit_push_handler"])
    assert sorted(namespace["app"].handlers) == ["invoice", "resize", "send-email", "transcode"]
    # The logging example: a library's record inside the handler lands in the job's logs.
    from emit_push.testing import run_handler

    recording = await run_handler(namespace["app"], "invoice", None)
    assert recording.status == "completed"
    assert [(e.source, e.message) for e in recording.logs] == [("billing", "charging 42")]
    # The resume example, as the retry after a failure at 75 s, then as a first attempt.
    payload = {"url": "s3://v", "seconds": 120}
    retry = await run_handler(
        namespace["app"], "transcode", payload, attempt_number=1, checkpoint={"offset": 60}
    )
    assert retry.result == {"encoded_from": 60}
    assert retry.checkpoints == [{"offset": 90}, {"offset": 120}]
    first = await run_handler(namespace["app"], "transcode", payload)
    assert first.result == {"encoded_from": 0}
    assert [c for c in first.calls if c.method == "GET"] == []
    await namespace["app"].aclose()
