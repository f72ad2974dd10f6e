"""The benchmarks still run (their figures are printed, never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each runs a benchmark in a child process: seconds

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run(script: str, *args: str) -> str:
    """The benchmark's output, once it has exited 0."""
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_cold_start_compares_import_and_first_push() -> None:
    # One run: the example still imports, and a push through app.handler is still
    # answered `skipped` by the stub (the benchmark's processes assert it).
    output = run("cold_start.py", "--runs", "1")
    assert "1. import" in output
    assert "2. first push answered" in output
    assert output.count("emit-push adds") == 2


def test_push_overhead_runs_both_endpoints() -> None:
    # A tiny run: both endpoints start, take pushes and finish every job.
    output = run("push_overhead.py", "--pushes", "20", "--rounds", "1")
    assert "emit-push" in output
    assert "ratio" in output


def test_chaos_prints_a_row_per_cell() -> None:
    # A tiny run: the server starts on uvicorn behind the fault harness, both ways of
    # running jobs finish, and the run stops it again (figures printed, not asserted).
    output = run("chaos.py", "--jobs", "5", "--rates", "3", "--kinds", "before,drop")
    assert "stranded" in output
    rows = [
        line.split() for line in output.splitlines() if line.strip().startswith(("push", "poll"))
    ]
    assert [(row[0], row[1], row[2]) for row in rows] == [
        ("push", "before", "1/3"),
        ("push", "drop", "1/3"),
        ("poll", "before", "1/3"),
        ("poll", "drop", "1/3"),
    ]
