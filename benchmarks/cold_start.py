"""What emit-push adds to a Lambda cold start: importing the Lambda example versus
importing only the third-party modules that import loads, each in a fresh process.

The baseline is measured, not guessed: a first process imports the example and lists
every module outside ``emit_push`` (and the example) that ended up in ``sys.modules``,
in load order; the baseline process imports exactly those. So both processes load the
same httpx, pydantic, mangum, starlette and standard library; the difference is what
emit-push itself runs at import. Runs alternate; medians are reported.

    python benchmarks/cold_start.py [--runs 21]
"""

from __future__ import annotations

import argparse
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
    "PYTHONDONTWRITEBYTECODE": "1",
}

LIST_MODULES = """
import sys
before = set(sys.modules)
import app
print(__import__("json").dumps([
    name for name in sys.modules
    if name not in before and name != "app" and not name.startswith("emit_push")
]))
"""


def dependencies() -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", LIST_MODULES], env=ENV, capture_output=True, text=True, check=True
    )
    modules: list[str] = json.loads(out.stdout)
    return modules


def timed(script: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, script], env=ENV, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    modules = dependencies()
    with tempfile.TemporaryDirectory() as folder:
        baseline = Path(folder) / "baseline.py"
        baseline.write_text(
            "import importlib\n"
            f"for name in {modules!r}:\n"
            "    try:\n        importlib.import_module(name)\n"
            "    except Exception:\n        pass\n"
        )
        example = Path(folder) / "example.py"
        example.write_text("import app\nassert callable(app.handler)\n")
        timed(str(baseline))  # warm the file cache
        timed(str(example))
        base, full = [], []
        for _ in range(args.runs):
            base.append(timed(str(baseline)))
            full.append(timed(str(example)))
    b, f = statistics.median(base) * 1000, statistics.median(full) * 1000
    tops = sorted({name.split(".")[0] for name in modules})
    print(f"third-party and stdlib modules loaded by the example: {len(modules)}")
    print(f"  top-level packages: {', '.join(t for t in tops if not t.startswith('_'))[:300]}")
    print(f"baseline (dependencies only)  median {b:7.1f} ms over {args.runs} runs")
    print(f"Lambda example (emit-push)    median {f:7.1f} ms")
    print(f"emit-push adds                        {f - b:7.1f} ms  (aim <= 15 ms)")


if __name__ == "__main__":
    main()
