"""What ``mypy --strict`` makes of user code: statuses are the contract's ``Literal``s,
the push handler takes both of its forms, a connect hook is a plain function."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

USER_CODE = """
from typing import Any

from websockets.asyncio.client import connect

from emit_push import AsyncEmitClient, EmitClient, JobDetails, JobState, PushResult, RealtimeEvent


def statuses(job: JobDetails, state: JobState, event: RealtimeEvent) -> bool:
    if job.status == "complete":  # error: a typo
        return True
    if state.status == "runing":  # error: a typo
        return True
    if event.status == "finished":  # error: not a status
        return True
    return job.status in ("completed", "dead", "killed") or event.status == "dead"


async def forms(client: AsyncEmitClient, body: bytes, headers: dict[str, str]) -> PushResult:
    handler = client.workers.create_push_handler(lambda job: None)
    await handler.handle_push({"jobId": "01J"})  # the parsed payload, as the seed's
    await handler.handle_push(body, headers)  # the raw request
    return await handler.handle_push({"jobId": "01J"}, headers, remaining_time=3.0)


def via_proxy(url: str, **options: Any) -> connect:
    return connect(url, proxy="http://proxy.internal:3128", **options)


def hook(client: EmitClient) -> None:
    client.realtime.connect_job("01J", connect=via_proxy).close()
"""


@pytest.mark.slow
def test_mypy_checks_statuses_and_takes_the_new_forms(tmp_path: Path) -> None:
    from mypy import api

    code = textwrap.dedent(USER_CODE).lstrip()
    expected = [str(n) for n, line in enumerate(code.splitlines(), 1) if "# error:" in line]
    source = tmp_path / "user_code.py"
    source.write_text(code)
    cache = tmp_path / "mypy-cache"
    out, err, status = api.run(["--strict", "--cache-dir", str(cache), str(source)])
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert [line.split(":")[1] for line in errors] == expected, out + err
    assert len(expected) == 3
    assert all("[comparison-overlap]" in line for line in errors)
    assert status == 1
