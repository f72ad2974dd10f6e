"""What the tests of ``emit-push dev``, ``worker``, ``jobs`` and ``watch`` share."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

from tests.cli.processes import EMIT

APP = """
from emit_push import EmitPush, Job

app = EmitPush()


@app.on_job("greet")
async def greet(job: Job) -> dict:
    who = job.payload.get("who", "world")
    job.log.info("hello " + who)
    await job.progress(50, "halfway", sub_progress={"a": {"percent": 50}})
    return {"greeting": "hello " + who, "version": VERSION}
"""


def write_app(folder: Path, version: int) -> Path:
    path = folder / "greeter.py"
    path.write_text(textwrap.dedent(APP).replace("VERSION", str(version)))
    return path


def run(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EMIT, *args], capture_output=True, text=True, env=env, timeout=timeout)


SERVER_HINT = "Is the server running? Start it with `emit-push server`"


REPO = Path(__file__).resolve().parents[2]


NO_SETTINGS = {"EMIT_BASE_URL": "", "EMIT_SPACE_ID": "", "EMIT_API_KEY": "", "EMIT_PUSH_SECRET": ""}
