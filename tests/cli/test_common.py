"""What the client commands share, run as real processes on 127.0.0.1: one-line errors,
and a quiet end when the reader goes away.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.cli.helpers import SERVER_HINT, run
from tests.cli.processes import EMIT
from tests.conftest import WORKER_KEY

DEAD = "http://127.0.0.1:9/api/v1"  # the discard port: nothing listens there
PRODUCER_HINT = "the producer key that `emit-push server` and `emit-push dev` print has it"


@pytest.mark.parametrize(
    ("change", "args", "message"),
    [
        ({"EMIT_BASE_URL": DEAD}, ["jobs", "list"], f"cannot reach {DEAD}"),
        ({"EMIT_BASE_URL": DEAD}, ["jobs", "list"], SERVER_HINT),
        # A job stream: no leftover progress bar, and the same fix.
        ({"EMIT_BASE_URL": DEAD}, ["watch", "01JNOSUCHJOB"], f"cannot reach {DEAD}"),
        ({"EMIT_BASE_URL": DEAD}, ["watch", "01JNOSUCHJOB"], SERVER_HINT),
        ({"EMIT_API_KEY": "emit_wrong"}, ["jobs", "list"], "the API key was refused (401)"),
        ({"EMIT_API_KEY": "emit_wrong"}, ["watch", "--space"], "the API key was refused (401)"),
        (
            {"EMIT_API_KEY": WORKER_KEY},
            ["jobs", "create", "x"],
            f"Missing required scope: jobs:create (403): use a key with that scope ({PRODUCER_HINT})",
        ),
        (
            {"EMIT_API_KEY": WORKER_KEY},
            ["jobs", "kill", "01JNOSUCHJOB"],
            f"Missing required scope: jobs:kill (403): use a key with that scope ({PRODUCER_HINT})",
        ),
        (
            {},
            ["jobs", "get", "01JNOSUCHJOB"],
            "job 01JNOSUCHJOB does not exist in this space (404)",
        ),
        (  # --json too: the error on standard error, as it is, and nothing on standard output
            {},
            ["jobs", "kill", "01JNOSUCHJOB", "--json"],
            "job 01JNOSUCHJOB does not exist in this space (404)",
        ),
        # A base URL without /api/v1: every path is unknown there; the URL is the fix.
        (
            {"EMIT_BASE_URL": "{root}"},
            ["jobs", "list"],
            "{root} was not found (404): check that EMIT_BASE_URL ends in /api/v1 (it is {root})",
        ),
        (
            {"EMIT_BASE_URL": "{root}/"},
            ["jobs", "get", "01JNOSUCHJOB"],
            "job 01JNOSUCHJOB was not found (404): check that EMIT_BASE_URL ends in /api/v1",
        ),
        (
            {"EMIT_BASE_URL": "{root}"},
            ["watch", "01JNOSUCHJOB"],
            "check that EMIT_BASE_URL ends in /api/v1 (it is {root})",
        ),
        ({"EMIT_SPACE_ID": ""}, ["jobs", "list"], "EMIT_SPACE_ID"),
    ],
)
def test_errors_are_one_clear_line(
    env: dict[str, str], change: dict[str, str], args: list[str], message: str
) -> None:
    root = env["EMIT_BASE_URL"].removesuffix("/api/v1")
    result = run(*args, env={**env, **{k: v.format(root=root) for k, v in change.items()}})
    # A refused call or an unreachable server is a failure (1); missing settings, usage (2).
    assert result.returncode == (2 if change == {"EMIT_SPACE_ID": ""} else 1)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("emit-push: ")
    assert message.format(root=root) in lines[0]
    assert "emit_wrong" not in result.stderr
    assert result.stdout == ""  # nothing half-drawn before the error


@pytest.mark.parametrize("args", [["jobs", "get", "{job}"], ["jobs", "list"], ["--help"]])
def test_a_reader_that_goes_away_ends_the_command_quietly(
    env: dict[str, str], args: list[str]
) -> None:
    job_id = run("jobs", "create", "greet", "-q", env=env).stdout.strip()
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `| head` does once it has had enough: every write fails
    try:
        result = subprocess.run(
            [*EMIT, *(arg.format(job=job_id) for arg in args)], stdout=write_end,
            stderr=subprocess.PIPE, text=True, env=env, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert result.stderr == ""
    # 141 (128 + SIGPIPE), as for `cat` and `yes`; --help goes through argparse, which
    # ignores a failed write and exits 0.
    assert result.returncode == (0 if args == ["--help"] else 141)
