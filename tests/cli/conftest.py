"""CLI fixtures: ``emit-push`` child processes, and the settings its client tools read."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import write_app
from tests.cli.processes import Process
from tests.conftest import ADMIN_KEY, SPACE, WORKER_KEY, LiveServer


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Processes the test starts: each is killed (if still running) and reaped after it."""
    started: list[Process] = []
    yield started
    for process in started:
        process.close()


@pytest.fixture
def env(live_server: LiveServer) -> dict[str, str]:
    """The settings of the emit-push client tools, for ``live_server``."""
    return {
        **os.environ,
        "EMIT_BASE_URL": live_server.base_url,
        "EMIT_SPACE_ID": SPACE,
        "EMIT_API_KEY": ADMIN_KEY,
        "COLUMNS": "200",
    }


@pytest.fixture
def worker(tmp_path: Path, env: dict[str, str], processes: list[Process]) -> Process:
    """``emit-push worker`` on a greeter app, polling ``live_server``."""
    app = write_app(tmp_path, 1)
    process = Process(
        "worker", str(app), "--poll-interval", "0.05", env={**env, "EMIT_API_KEY": WORKER_KEY}
    )
    processes.append(process)
    process.wait_for("emit-push worker: greet")
    return process
