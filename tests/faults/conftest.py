"""Fixtures of the fault tests: an EmitPush app whose client goes through a FaultyServer
(in-process, or on real uvicorn), and a clean admin client beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from emit_push import AsyncEmitClient, EmitPush
from emit_push.server import API_PREFIX, EmitServer
from tests.conftest import ADMIN_KEY, SPACE, WORKER_KEY, client_for
from tests.faults.workload import quicken
from tests.harnesses.faults import FaultyServer

MakeApp = Callable[..., EmitPush]

RETRY_SCALE = 0.1
"""The app's retry backoff is a tenth of the SDK's: the jobs' timeouts here are short."""


@pytest.fixture
async def admin(emit: EmitServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client straight to the server: never faulted."""
    async with client_for(emit, ADMIN_KEY) as client:
        yield client


@pytest.fixture
async def faulty_app() -> AsyncIterator[Callable[..., EmitPush]]:
    """``faulty_app(faults)``: an EmitPush whose API calls go through ``faults`` in-process;
    ``faulty_app(url=...)``: through a FaultyServer served on uvicorn at ``url``. Its
    retries back off ``RETRY_SCALE`` times as long as the SDK's."""
    clients: list[AsyncEmitClient] = []

    def make(
        faults: FaultyServer | None = None, *, url: str | None = None, **options: Any
    ) -> EmitPush:
        if url is not None:
            client = AsyncEmitClient(
                space_id=SPACE,
                api_key=WORKER_KEY,
                base_url=url + API_PREFIX,
                transport=httpx.AsyncHTTPTransport(),  # loopback: no proxy from the environment
            )
        else:
            client = AsyncEmitClient(
                space_id=SPACE,
                api_key=WORKER_KEY,
                base_url=f"http://emit.test{API_PREFIX}",
                transport=httpx.ASGITransport(app=faults),
            )
        clients.append(quicken(client, RETRY_SCALE))
        return EmitPush(client=client, push_secret=None, **options)

    yield make
    for client in clients:
        await client.aclose()
