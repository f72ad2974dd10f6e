"""benchmarks/dashboard.py still runs (its figures are printed, never asserted), and still
takes the README's pictures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.dashboard.conftest import find_chromium, install_chromium, unavailable

pytestmark = pytest.mark.slow  # a server and a browser in child processes: seconds

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "dashboard.py"


def run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_benchmark_measures_and_takes_pictures(tmp_path: Path) -> None:
    if find_chromium() is None and install_chromium() is None:
        unavailable("Chromium not found nor installable: apt-get install chromium")
    output = run("--jobs", "120", "--runs", "1")
    assert "total" in output
    assert "first render, page's mark" in output
    assert "50 rows" in output
    assert "Older ›, 2 pages deep" in output
    assert "filter by name" in output
    run("--screenshots", str(tmp_path))
    for name in ("dashboard.png", "dashboard-job.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
