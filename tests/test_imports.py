"""What a Lambda cold start imports: the app and its adapter, not the SDK behind them.

The API client, its transport and settings, the wire models and endpoints, the runner
and the log shippers (and with them httpx) come with the first push; a push whose claim
is refused (404, 409) is answered without the wire models, the run's machinery or pydantic
itself. These tests pin the module sets; ``benchmarks/cold_start.py`` measures the time.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emit_push import ConfigurationError, EmitPush
from emit_push._sdk.settings import _base_url, _plain_url

LAMBDA_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "aws_lambda"
ENV = {
    "EMIT_SPACE_ID": "01JIMPORTS0000000000000000",
    "EMIT_API_KEY": "emit_imports_key",
    "EMIT_PUSH_SECRET": "imports-secret",
    "EMIT_BASE_URL": "http://127.0.0.1:9/api/v1",
}

# Needed by the first push, not by the import: each would cost a cold start.
DEFERRED = [
    "emit_push._client",
    "emit_push._sdk.client",
    "emit_push._framework.decisions",
    "emit_push._sdk.config",
    "emit_push._logs.delivery",
    "emit_push._wire.endpoints",
    "emit_push._framework.execution",
    "emit_push._sdk.jobs",
    "emit_push._logs.batch",
    "emit_push._logs.logger",
    "emit_push._wire.models",
    "emit_push._framework.polling",
    "emit_push._framework.sweep",
    "emit_push._framework.push",
    "emit_push._wire.retry",
    "emit_push._logs.shipping",
    "emit_push._sdk.transport",
    "emit_push._framework.workers",
    "httpx",
    "httpcore",
]
# Not needed to answer a push whose claim is refused (an unknown job, a duplicate push):
# no wire model is built (not even pydantic is imported), nothing of a run is loaded.
NOT_FOR_A_REFUSED_CLAIM = [
    "emit_push._framework.decisions",
    "emit_push._framework.execution",
    "emit_push._framework.tracing",
    "emit_push._logs",
    "emit_push._sdk.jobs",
    "emit_push._wire.models",
    "gzip",
    "opentelemetry",  # installed here (the dev extra): imported at the first run only
    "pydantic",
]
NEVER = [
    "emit_push.cli",
    "emit_push.server",
    "emit_push.testing",
    "flask",
    "functions_framework",
    "uvicorn",
    "websockets",  # client.realtime's, loaded on its first use
]


def loaded_by(code: str, **env: str) -> set[str]:
    """The modules that running ``code`` in a fresh interpreter adds to ``sys.modules``."""
    script = f"import sys\nbefore = set(sys.modules)\n{code}\n" + (
        "import json\nprint(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def heavy(loaded: set[str], names: list[str]) -> list[str]:
    return sorted(m for m in loaded if any(m == n or m.startswith(f"{n}.") for n in names))


def test_importing_the_lambda_example_defers_the_client_and_never_loads_other_platforms() -> None:
    loaded = loaded_by(
        "import app\nassert callable(app.handler)", PYTHONPATH=str(LAMBDA_EXAMPLE), **ENV
    )
    assert heavy(loaded, DEFERRED) == []
    assert heavy(loaded, NEVER) == []
    assert heavy(loaded, ["opentelemetry", "emit_push._framework.tracing"]) == []
    # What the Lambda path does need is there: its adapter, and the payload's TypeAdapter.
    assert {"emit_push.adapters.aws_lambda", "mangum", "starlette", "pydantic"} <= loaded


def test_registering_a_typed_handler_and_serving_it_loads_no_client() -> None:
    code = """
from pydantic import BaseModel
from emit_push import EmitPush, Job, SyncJob
from emit_push.adapters.asgi import asgi_app

class Resize(BaseModel):
    width: int

app = EmitPush(space_id="s", api_key="k", push_secret="p", base_url="https://emit.example/v1")

@app.on_job("resize")
async def resize(job: Job[Resize]) -> None: ...

@app.on_job("crop")
def crop(job: SyncJob[dict[str, int]]) -> None: ...

asgi_app(app)
"""
    loaded = loaded_by(code)
    assert heavy(loaded, DEFERRED) == []


def test_the_first_push_loads_what_was_deferred_and_is_answered() -> None:
    # The other side of the bargain, in a fresh process: a push brings the client in. The
    # "service" here answers 404 to the claim, so the push ends "skipped".
    code = """
import asyncio, json, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class NoSuchJob(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.dumps({"error": "no such job", "code": "not_found"}).encode()
        self.send_response(404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), NoSuchJob)
threading.Thread(target=server.serve_forever, daemon=True).start()

from emit_push import EmitPush
base_url = f"http://127.0.0.1:{server.server_port}/v1"
app = EmitPush(space_id="s", api_key="k", push_secret="p", base_url=base_url)
app.on_job("noop")(lambda job: None)

async def main():
    body = json.dumps({"jobId": "job_1", "name": "noop"}).encode()
    result = await app.handle_push(body, {"Authorization": "Bearer p"})
    assert (result.status, result.reason) == ("skipped", "no such job"), result
    await app.aclose()

asyncio.run(main())
server.shutdown()
"""
    loaded = loaded_by(code)
    assert {
        "emit_push._sdk.client",
        "emit_push._framework.push",
        "emit_push._wire.endpoints",
        "httpx",
    } <= loaded
    assert heavy(loaded, NOT_FOR_A_REFUSED_CLAIM) == []


def test_opentelemetry_is_installed_here_so_that_its_absence_above_means_something() -> None:
    assert importlib.util.find_spec("opentelemetry.trace") is not None


def test_checking_the_settings_needs_no_httpx_for_a_plain_base_url() -> None:
    code = 'from emit_push import EmitPush\nEmitPush(space_id="s", api_key="k").runner.prepare()'
    loaded = loaded_by(code, EMIT_BASE_URL="http://127.0.0.1:8000/api/v1")
    assert heavy(loaded, ["httpx"]) == []


# -- the base URL check that keeps httpx out of a cold start ---------------------------


def httpx_verdict(value: str) -> str | None:
    """The base URL as the httpx-based check makes it, or None when that refuses it."""
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError):
        return None
    if url.scheme not in {"http", "https"} or not url.host or url.userinfo:
        return None
    if url.query or url.fragment:
        return None
    return str(url).rstrip("/")


@pytest.mark.parametrize(
    "value",
    [
        "https://emit.run/api/v1",
        "https://emit.run/api/v1/",
        "http://127.0.0.1:9/api/v1",
        "http://localhost:8080",
        "http://my-host.internal:65535/a/b~c/d_e;f=g",
        "http://10.0.0.255/x",
    ],
)
def test_plain_base_urls_are_taken_as_httpx_takes_them(value: str) -> None:
    assert _plain_url(value)
    assert _base_url(value) == httpx_verdict(value)


@pytest.mark.parametrize(
    "value",
    [
        "HTTPS://emit.run/api/v1",  # httpx lowercases
        "https://Emit.Run/api/v1",
        "https://emit.run:443/api/v1",  # httpx drops the default port
        "http://emit.run:080/api/v1",
        "http://emit.run:0/api/v1",
        "http://emit.run:70000/api/v1",
        "http://emit.run:/api/v1",
        "http://emit.run:８０/api/v1",  # full-width digits
        "http://999.1.1.1/api",  # httpx: not an IPv4 address
        "http://01.1.1.1/api",
        "http://emit.run/a/../b",  # httpx removes dot segments
        "http://emit.run/./b",
        "http://emit.run/a b",  # httpx escapes
        "http://emit.run/a%20b",
        "http://emit.run/v1?x=1",
        "http://emit.run/v1#x",
        "http://[::1]:8000/v1",
        "http://ëmit.run/v1",
        "http://emit.run/" + "x" * 70_000,  # httpx: too long
        "ftp://emit.run",
        "emit.run/api/v1",
        "",
    ],
)
def test_other_base_urls_go_to_httpx(value: str) -> None:
    assert not _plain_url(value)
    expected = httpx_verdict(value)
    if expected is None:
        with pytest.raises(ConfigurationError):
            _base_url(value)
    else:
        assert _base_url(value) == expected


URL_TEXT = st.text(st.sampled_from([*"az09.-_~%:/@!$&'()*+,;=?#[] ", "A", "8", "²", "é"]))


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["http://", "https://", "HTTP://", "ftp://", ""]), URL_TEXT)
def test_a_url_taken_without_httpx_is_one_httpx_takes_the_same(prefix: str, rest: str) -> None:
    value = prefix + rest
    if _plain_url(value):
        assert httpx_verdict(value) == value.rstrip("/")


def test_the_app_still_refuses_a_bad_base_url_at_prepare() -> None:
    app = EmitPush(space_id="s", api_key="k", base_url="https://emit.run:port/api")
    with pytest.raises(ConfigurationError, match="base_url"):
        app.runner.prepare()
