"""Every Python block of the README passes ``mypy --strict``: what users copy type-checks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_readme import python_blocks

# The README tells users to install these for one example; they are no dependency here.
NOT_INSTALLED = ["opentelemetry.exporter.*"]


@pytest.mark.slow
def test_readme_python_blocks_pass_mypy_strict(tmp_path: Path) -> None:
    # One module, as tests/test_readme.py runs them: later blocks use the `app` of the first.
    lines: list[str] = []
    block_of_line: list[int] = []
    for number, block in enumerate(python_blocks(), start=1):
        text = f"# README python block {number}\n{block}\n"
        lines += text.splitlines()
        block_of_line += [number] * len(text.splitlines())
    (tmp_path / "readme.py").write_text("\n".join(lines) + "\n")
    (tmp_path / "mypy.ini").write_text(
        "[mypy]\nstrict = True\npython_version = 3.11\n"
        + "".join(f"[mypy-{module}]\nignore_missing_imports = True\n" for module in NOT_INSTALLED)
    )
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--cache-dir", ".cache"]
        + ["--no-error-summary", "readme.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [
        f"block {block_of_line[int(line) - 1]}: {lines[int(line) - 1].strip()!r}: {message}"
        for line, message in re.findall(r"^readme\.py:(\d+): error: (.*)$", run.stdout, re.M)
    ]
    assert errors == [], "\n".join(errors)
    assert run.returncode == 0, run.stdout + run.stderr
