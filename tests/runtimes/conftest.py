"""One push delivery interface over three real runtimes, all on 127.0.0.1.

- ``uvicorn``: the scenario app's ASGI adapter on uvicorn, pushed to over HTTP;
- ``lambda``: the real ``awslambdaric`` runtime client running the Lambda adapter against
  the Runtime API stub, fed Function URL and API Gateway events;
- ``gcf``: the real functions-framework server running the Cloud Functions adapter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SPACE, WORKER_KEY, LiveServer, ServeThread, make_config
from tests.harnesses.events import Shape, build_event
from tests.harnesses.gcf import FunctionsFramework
from tests.harnesses.lambda_runtime import FunctionError, LambdaRuntime

REPO = Path(__file__).resolve().parents[2]
SECRET = "push-secret-for-tests"
AUTH = {"authorization": f"Bearer {SECRET}"}
RUNTIMES = ("uvicorn", "lambda", "gcf")


def app_env(live: LiveServer, spans: Path | None = None) -> dict[str, str]:
    env = {
        "EMIT_SPACE_ID": SPACE,
        "EMIT_API_KEY": WORKER_KEY,
        "EMIT_BASE_URL": live.base_url,
        "EMIT_PUSH_SECRET": SECRET,
        "PYTHONPATH": str(REPO),
    }
    return env if spans is None else {**env, "SCENARIO_SPANS": str(spans)}


class Runtime:
    """Delivers a push the way its platform would, and returns (status, JSON body)."""

    name: str
    spans_file: Path
    """Where the app's spans go, a JSON line each (``scenario_app.trace_to``)."""

    def spans(self) -> list[dict[str, Any]]:
        """The spans the app has finished so far."""
        if not self.spans_file.exists():
            return []
        return [json.loads(line) for line in self.spans_file.read_text().splitlines()]

    def push(
        self,
        body: Mapping[str, Any] | bytes,
        headers: Mapping[str, str] = AUTH,
        *,
        deadline_in: float = 30.0,
        shape: Shape = "lambda_function_url",
    ) -> tuple[int, Any]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def output(self) -> str | None:
        """What the app's process wrote to stdout and stderr so far; None in this process
        (whose logging pytest configures)."""
        return None


def _raw(body: Mapping[str, Any] | bytes) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


class _OverHttp(Runtime):
    """A runtime that takes pushes as HTTP requests, as a web server does."""

    _http: httpx.Client

    def push(
        self, body: Any, headers: Mapping[str, str] = AUTH, *, chunked: bool = False, **_: Any
    ) -> tuple[int, Any]:
        content = _raw(body)
        sent = iter([content]) if chunked else content  # an iterator goes chunked
        response = self._http.post("/", content=sent, headers=dict(headers))
        return response.status_code, response.json()


class Uvicorn(_OverHttp):
    name = "uvicorn"

    def __init__(self, live: LiveServer, spans: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.spans_file = spans
        for key, value in app_env(live, spans).items():
            monkeypatch.setenv(key, value)
        from emit_push._framework import tracing
        from tests.runtimes import scenario_app

        # This process's global provider may be set once only: emit-push's own, meanwhile.
        tracing.use_provider(scenario_app.trace_to(str(spans)))
        self._serve = ServeThread(scenario_app.asgi)
        self._http = httpx.Client(base_url=self._serve.url, trust_env=False, timeout=60)

    def close(self) -> None:
        from emit_push._framework import tracing

        self._http.close()
        self._serve.stop()
        tracing.use_provider(None)


class Lambda(Runtime):
    name = "lambda"

    def __init__(self, live: LiveServer, spans: Path) -> None:
        self.spans_file = spans
        self.runtime = LambdaRuntime()
        self.function = self.runtime.start_function(
            "tests.runtimes.scenario_lambda.handler", task_root=REPO, env=app_env(live, spans)
        )

    def push(
        self,
        body: Any,
        headers: Mapping[str, str] = AUTH,
        *,
        deadline_in: float = 30.0,
        shape: Shape = "lambda_function_url",
    ) -> tuple[int, Any]:
        given = {"authorization": None, **headers}  # drop the recorded event's own secret
        event = build_event(shape, _raw(body), given)
        response = self.runtime.invoke(event, deadline_in=deadline_in)
        if isinstance(response, FunctionError):
            raise AssertionError(f"the function failed: {response}")
        return response["statusCode"], json.loads(response["body"])

    def close(self) -> None:
        self.runtime.close()

    def output(self) -> str:
        return self.function.output()


class CloudFunctions(_OverHttp):
    name = "gcf"

    def __init__(self, live: LiveServer, spans: Path) -> None:
        self.spans_file = spans
        source = REPO / "tests" / "runtimes" / "scenario_gcf.py"
        self._ff = FunctionsFramework(source, "gcf", env=app_env(live, spans))
        self._http = httpx.Client(base_url=self._ff.url, trust_env=False, timeout=60)

    def close(self) -> None:
        self._http.close()
        self._ff.close()

    def output(self) -> str:
        return self._ff.output()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(make_config(db_path=str(tmp_path_factory.mktemp("rt") / "emit.sqlite3")))
    yield server
    server.stop()


@pytest.fixture(scope="module", params=RUNTIMES)
def runtime(
    request: pytest.FixtureRequest, live: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runtime]:
    spans = tmp_path_factory.mktemp(f"spans-{request.param}") / "spans.jsonl"
    with pytest.MonkeyPatch.context() as monkeypatch:
        made: Runtime
        if request.param == "uvicorn":
            made = Uvicorn(live, spans, monkeypatch)
        elif request.param == "lambda":
            made = Lambda(live, spans)
        else:
            made = CloudFunctions(live, spans)
        yield made
        made.close()
