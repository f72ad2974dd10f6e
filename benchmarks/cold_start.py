"""What emit-push adds to a Lambda cold start: importing the Lambda example versus
importing only the third-party modules that import loads, each in a fresh process.

The baseline is measured, not guessed: a first process imports the example and lists
every module outside ``emit_push`` (and the example) that ended up in ``sys.modules``,
in load order; the baseline process imports exactly those. So both processes load the
same pydantic, mangum, starlette and standard library; the difference is what emit-push
itself runs at import. Runs alternate; medians are reported.

Two corrections make that difference emit-push's alone:

- Both read every module from bytecode, as a deployed Lambda does (``pip install``
  compiles the wheel it installs): the timed processes share a temporary
  ``PYTHONPYCACHEPREFIX`` that the warm-up runs fill. Without it an editable checkout
  (or ``PYTHONDONTWRITEBYTECODE``) makes the example process compile emit-push from
  source on every run, some 50 ms that no deployment pays, while the baseline's
  site-packages come with their bytecode.
- A second baseline also defines the example's own pydantic models (taken from its
  source), as the same Lambda written without emit-push would. The first model class a
  process defines costs pydantic ~10 ms of one-time set-up, whoever defines it; that is
  the user's cost, not the framework's. The figure over the bare dependencies is printed
  too.

    python benchmarks/cold_start.py [--runs 21]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "aws_lambda"
ENV = {
    **os.environ,
    "EMIT_SPACE_ID": "01JCOLDSTART00000000000000",
    "EMIT_API_KEY": "emit_cold_start_key",
    "EMIT_PUSH_SECRET": "cold-start-secret",
    "EMIT_BASE_URL": "http://127.0.0.1:9/api/v1",  # never contacted at import
    "PYTHONPATH": os.pathsep.join([str(EXAMPLE), *sys.path]),
}
ENV.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode goes to the temporary prefix instead

LIST_MODULES = """
import sys
before = set(sys.modules)
import app
print(__import__("json").dumps([
    name for name in sys.modules
    if name not in before and name != "app" and not name.startswith("emit_push")
]))
"""


def dependencies(env: dict[str, str]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", LIST_MODULES], env=env, capture_output=True, text=True, check=True
    )
    modules: list[str] = json.loads(out.stdout)
    return modules


def payload_models() -> str:
    """The source of the example's pydantic models (classes based on ``BaseModel``)."""
    source = (EXAMPLE / "app.py").read_text()
    models = [
        ast.get_source_segment(source, node) or ""
        for node in ast.parse(source).body
        if isinstance(node, ast.ClassDef)
        and any(isinstance(base, ast.Name) and base.id == "BaseModel" for base in node.bases)
    ]
    return "from pydantic import BaseModel\n" + "\n".join(models) + "\n"


def timed(script: str, env: dict[str, str]) -> tuple[float, float]:
    """Milliseconds: the whole process running ``script``, and the step it timed itself."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, script], env=env, capture_output=True, text=True, check=True
    ).stdout
    return (time.perf_counter() - started) * 1000, float(out or 0) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        env = {**ENV, "PYTHONPYCACHEPREFIX": str(Path(folder) / "pycache")}
        modules = dependencies(env)
        imports = (
            "import importlib, time\n"
            f"for name in {modules!r}:\n"
            "    try:\n        importlib.import_module(name)\n"
            "    except Exception:\n        pass\n"
        )
        step = "started = time.perf_counter()\n{}print(time.perf_counter() - started)\n"
        scripts = {
            "deps": imports,
            "models": imports + step.format(payload_models()),
            "example": imports + step.format("import app\nassert callable(app.handler)\n"),
        }
        paths = {}
        for kind, text in scripts.items():
            paths[kind] = Path(folder) / f"{kind}.py"
            paths[kind].write_text(text)
            timed(str(paths[kind]), env)  # warm the file cache and write the bytecode
        whole: dict[str, list[float]] = {kind: [] for kind in scripts}
        steps: dict[str, list[float]] = {kind: [] for kind in scripts}
        for _ in range(args.runs):
            for kind, path in paths.items():
                process, own = timed(str(path), env)
                whole[kind].append(process)
                steps[kind].append(own)
    tops = sorted({name.split(".")[0] for name in modules})
    print(f"third-party and stdlib modules loaded by the example: {len(modules)}")
    print(f"  top-level packages: {', '.join(t for t in tops if not t.startswith('_'))[:300]}")
    print(f"medians over {args.runs} runs, ms               whole process  its own step")
    for label, kind in [
        ("baseline (dependencies only)", "deps"),
        ("baseline + the example's pydantic models", "models"),
        ("Lambda example (emit-push)", "example"),
    ]:
        medians = [statistics.median(t[kind]) for t in (whole, steps)]
        print(f"{label:42s} {medians[0]:11.1f} {medians[1]:13.1f}")
    for label, base, note in [
        ("emit-push adds", "models", "  (aim <= 15 ms)"),
        ("  over the dependencies only", "deps", ""),
    ]:
        added = [
            statistics.median(t["example"]) - statistics.median(t[base]) for t in (whole, steps)
        ]
        print(f"{label:42s} {added[0]:11.1f} {added[1]:13.1f}{note}")


if __name__ == "__main__":
    main()
