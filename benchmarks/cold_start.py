"""What emit-push adds to a Lambda cold start: the example against its bare dependencies.

Two comparisons, each of two fresh processes, side by side:

1. **Import** (the issue's definition). The baseline imports the example's dependencies,
   as a Lambda written without emit-push would: httpx, pydantic, mangum (``Mangum``) and
   starlette (the application, request, response and routing modules), and defines the
   example's own pydantic models (read from its source: the first model class costs
   pydantic some set-up, and that is the user's cost, so it is on both sides). The other
   process imports the example. emit-push defers httpx and its API client until the
   first push, so this figure leaves that cost out; the second comparison shows it.
2. **First push answered.** The example imported and one push handled through
   ``app.handler`` (the Lambda handler) with a Function URL event, against a local stub
   of the API that answers the claim 404, so the push is answered ``skipped``. The
   baseline is the same Lambda written by hand: the same imports and models, a Starlette
   app with one route behind ``Mangum`` that checks the secret, reads the push and makes
   the claim with ``httpx.AsyncClient``, handling the same event. The least any push
   handler does.

Both processes read every module from bytecode, as a deployed Lambda does (``pip
install`` compiles what it installs): they share a temporary ``PYTHONPYCACHEPREFIX`` that
warm-up runs fill. Without it an editable checkout would compile emit-push from source on
every run. The baseline's code is a module too (``baseline.py`` beside the scripts), so
neither side compiles its handler from source in a run: each process's own script is the
same few lines plus what it imports. Runs alternate, in a rotating order; medians are
reported, for the whole process and for the step each process times itself (everything
after start-up, which is less noisy). Nothing here asserts a time: it prints figures.

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
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "aws_lambda"
SPACE_ID = "01JCOLDSTART00000000000000"
SECRET = "cold-start-secret"
JOB_ID = "01JCOLDSTARTJOB00000000000"

START = "import time\nstarted = time.perf_counter()\n"
REPORT = """
import json, sys
print(json.dumps({"step": time.perf_counter() - started, "modules": len(sys.modules),
                  "httpx": "httpx" in sys.modules}))
"""
DEPENDENCIES = """
import httpx
from mangum import Mangum
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
"""
HAND_WRITTEN = """
import os
BASE_URL = os.environ["EMIT_BASE_URL"]
HEADERS = {"x-api-key": os.environ["EMIT_API_KEY"]}

async def push(request: Request) -> JSONResponse:
    if request.headers.get("authorization") != "Bearer " + os.environ["EMIT_PUSH_SECRET"]:
        return JSONResponse({"error": "unauthorized"}, status_code=401)
    body = await request.json()
    async with httpx.AsyncClient(base_url=BASE_URL, headers=HEADERS) as http:
        claim = await http.post(f"/jobs/{body['jobId']}/claim")
    if claim.status_code == 404:
        return JSONResponse({"status": "skipped"})
    return JSONResponse({"status": "claimed"})

handler = Mangum(Starlette(routes=[Route("/", push, methods=["POST"])]), lifespan="off")
"""
ONE_PUSH = """
import json
class Context:
    aws_request_id = "cold-start"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000
answer = app.handler(EVENT, Context())
status = json.loads(answer["body"]).get("status")
assert (answer["statusCode"], status) == (200, "skipped"), answer
"""


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


def function_url_event() -> dict[str, Any]:
    """The recorded Function URL event, carrying a push for a job the stub does not know."""
    event: dict[str, Any] = json.loads((ROOT / "tests/events/lambda_function_url.json").read_text())
    push = {
        "type": "job.pending",
        "jobId": JOB_ID,
        "spaceId": SPACE_ID,
        "name": "thumbnail",
        "attemptNumber": 1,
        "timestamp": "2025-02-03T13:45:21.123Z",
    }
    event["body"] = json.dumps(push)
    event["headers"] |= {
        "authorization": f"Bearer {SECRET}",
        "content-length": str(len(event["body"])),
    }
    return event


class Stub(BaseHTTPRequestHandler):
    """The API, as far as a push for an unknown job goes: every request answers 404
    ``job_not_found``, the contract's word for an unknown job."""

    requests = 0

    def do_POST(self) -> None:
        Stub.requests += 1
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = b'{"error":"Job not found","code":"job_not_found"}'
        self.send_response(404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass


def timed(script: Path, env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """Milliseconds for the whole process running ``script``, and what it reported."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, check=True
    ).stdout
    return (time.perf_counter() - started) * 1000, json.loads(out.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    stub = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    # The baselines are modules, as the example is: read from bytecode, not compiled from
    # source in every run (a script's own code always is).
    modules = {
        "baseline_deps": DEPENDENCIES + payload_models(),
        "baseline": DEPENDENCIES + payload_models() + HAND_WRITTEN,
    }
    example = START + "import app\nassert callable(app.handler)\n"
    one_push = ONE_PUSH.replace("EVENT", repr(function_url_event()))
    scripts = {
        "import/baseline": START + "import baseline_deps\n" + REPORT,
        "import/example": example + REPORT,
        "push/baseline": START + "import baseline as app\n" + one_push + REPORT,
        "push/example": example + one_push + REPORT,
    }
    whole: dict[str, list[float]] = {kind: [] for kind in scripts}
    steps: dict[str, list[float]] = {kind: [] for kind in scripts}
    reports: dict[str, dict[str, Any]] = {}
    requests: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "EMIT_SPACE_ID": SPACE_ID,
            "EMIT_API_KEY": "emit_cold_start_key",
            "EMIT_PUSH_SECRET": SECRET,
            "EMIT_BASE_URL": f"http://127.0.0.1:{stub.server_address[1]}/api/v1",
            "PYTHONPATH": os.pathsep.join([str(EXAMPLE), *sys.path]),
            "PYTHONPYCACHEPREFIX": str(Path(folder) / "pycache"),
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode goes to the temporary prefix
        for name, text in modules.items():
            (Path(folder) / f"{name}.py").write_text(text)
        paths = {}
        for kind, text in scripts.items():
            paths[kind] = Path(folder) / f"{kind.replace('/', '_')}.py"
            paths[kind].write_text(text)
            before = Stub.requests
            timed(paths[kind], env)  # warm the file cache and write the bytecode
            requests[kind] = Stub.requests - before
        kinds = list(paths)
        for run in range(args.runs):
            for kind in kinds[run % len(kinds) :] + kinds[: run % len(kinds)]:
                process, report = timed(paths[kind], env)
                whole[kind].append(process)
                steps[kind].append(report["step"] * 1000)
                reports[kind] = report
    stub.shutdown()

    def row(label: str, kind: str) -> None:
        w, s = statistics.median(whole[kind]), statistics.median(steps[kind])
        r = reports[kind]
        loaded = f"{r['modules']:4d} modules, httpx {'loaded' if r['httpx'] else 'not loaded'}"
        print(f"  {label:44s} {w:8.1f} {s:10.1f}   {loaded}, {requests[kind]} request(s)")

    def added(label: str, test: str, base: str, note: str = "") -> None:
        w, s = (statistics.median(t[test]) - statistics.median(t[base]) for t in (whole, steps))
        print(f"  {label:44s} {w:+8.1f} {s:+10.1f}{note}")

    print(f"medians over {args.runs} runs, ms{'whole process':>35s} {'own step':>10s}")
    print("1. import")
    row("baseline: deps + the example's models", "import/baseline")
    row("Lambda example: import app", "import/example")
    added("emit-push adds", "import/example", "import/baseline", "   (aim <= 15 ms)")
    print("2. first push answered (claim 404 from a local stub: skipped)")
    row("hand-written Starlette + httpx, one push", "push/baseline")
    row("example + one push through app.handler", "push/example")
    added("emit-push adds", "push/example", "push/baseline")
    print(
        "  baseline deps: httpx, pydantic (+ the example's models), mangum.Mangum, starlette"
        " applications/requests/responses/routing"
    )


if __name__ == "__main__":
    main()
