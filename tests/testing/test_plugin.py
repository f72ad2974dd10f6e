"""The pytest plugin comes with the install (a ``pytest11`` entry point), and the README's
test file runs as it is: pytest in a fresh process, in an empty folder, no environment."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"

USES_THE_FIXTURES = """
import pytest

from emit_push import EmitPush, Job
from emit_push.testing import LocalEmit, SyncLocalEmit

app = EmitPush()


@app.on_job("hello")
async def hello(job: Job) -> str:
    return "hi"


def test_sync(emit_local_sync: SyncLocalEmit) -> None:
    assert emit_local_sync.push(app, "hello").job.result == "hi"


@pytest.mark.anyio
async def test_async(emit_local: LocalEmit, emit_client) -> None:
    outcome = await emit_local.push(app, "hello")
    assert (await emit_client.jobs.get(outcome.job.id)).result == "hi"
"""


def pytest_in(folder: Path, *args: str) -> tuple[int, str, list[str]]:
    """pytest in ``folder`` as a user runs it (no EMIT_* settings; warnings are errors):
    its exit code, its output, and the tests that passed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMIT_", "PYTEST_"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider", "-W", "error", *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = result.stdout + result.stderr
    return result.returncode, output, re.findall(r"^PASSED ([^\s\[]+)", result.stdout, flags=re.M)


def readme_test_file() -> str:
    section = README.read_text().split("## Testing your handlers\n", 1)[1].split("\n## ", 1)[0]
    block: str = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]
    return block


def test_the_plugin_is_an_entry_point_named_after_its_module() -> None:
    [entry] = [
        e
        for e in importlib.metadata.entry_points(group="pytest11")
        if e.value == "emit_push.testing.pytest_plugin"
    ]
    assert entry.name == "emit_push.testing.pytest_plugin"
    assert entry.dist is not None
    assert entry.dist.name == "emit-push"


@pytest.mark.slow
def test_the_fixtures_need_no_conftest_and_the_readme_test_file_runs_as_it_is(
    tmp_path: Path,
) -> None:
    source = readme_test_file()
    assert source.startswith('"""test_images.py.')
    (tmp_path / "test_images.py").write_text(source)
    (tmp_path / "test_hello.py").write_text(USES_THE_FIXTURES)
    code, output, passed = pytest_in(tmp_path)
    assert code == 0, output
    tests = re.findall(r"^(?:async )?def (test_\w+)", source, flags=re.M)
    assert len(tests) >= 4
    assert sorted(passed) == sorted(
        [f"test_images.py::{test}" for test in tests]
        + ["test_hello.py::test_sync", "test_hello.py::test_async"]
    )


@pytest.mark.slow
def test_naming_the_plugin_as_well_registers_it_once(tmp_path: Path) -> None:
    # As the README asked before the entry point: no "already registered" error.
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["emit_push.testing.pytest_plugin"]\n')
    (tmp_path / "test_hello.py").write_text(USES_THE_FIXTURES)
    code, output, passed = pytest_in(tmp_path)
    assert (code, sorted(passed)) == (0, ["test_hello.py::test_async", "test_hello.py::test_sync"])


@pytest.mark.slow
def test_it_can_be_turned_off(tmp_path: Path) -> None:
    (tmp_path / "test_hello.py").write_text(USES_THE_FIXTURES)
    code, output, _ = pytest_in(tmp_path, "-p", "no:emit_push.testing.pytest_plugin")
    assert code == 1
    assert "fixture 'emit_local_sync' not found" in output
