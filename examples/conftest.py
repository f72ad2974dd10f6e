"""Fixtures of the examples' tests that run a real server: the local emit server on
uvicorn on 127.0.0.1 (a file database of the test's own), and an admin client for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY, LiveServer, make_config


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(make_config(db_path=str(tmp_path / "emit.sqlite3")))
    yield server
    server.stop()


@pytest.fixture
def admin(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=live.base_url, headers={"x-api-key": ADMIN_KEY}, trust_env=False
    ) as client:
        yield client
