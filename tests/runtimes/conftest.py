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


def app_env(live: LiveServer) -> dict[str, str]:
    return {
        "EMIT_SPACE_ID": SPACE,
        "EMIT_API_KEY": WORKER_KEY,
        "EMIT_BASE_URL": live.base_url,
        "EMIT_PUSH_SECRET": SECRET,
        "PYTHONPATH": str(REPO),
    }


class Runtime:
    """Delivers a push the way its platform would, and returns (status, JSON body)."""

    name: str

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

    def __init__(self, live: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
        for key, value in app_env(live).items():
            monkeypatch.setenv(key, value)
        from tests.runtimes import scenario_app

        self._serve = ServeThread(scenario_app.asgi)
        self._http = httpx.Client(base_url=self._serve.url, trust_env=False, timeout=60)

    def close(self) -> None:
        self._http.close()
        self._serve.stop()


class Lambda(Runtime):
    name = "lambda"

    def __init__(self, live: LiveServer) -> None:
        self.runtime = LambdaRuntime()
        self.function = self.runtime.start_function(
            "tests.runtimes.scenario_lambda.handler", task_root=REPO, env=app_env(live)
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


class CloudFunctions(_OverHttp):
    name = "gcf"

    def __init__(self, live: LiveServer) -> None:
        source = REPO / "tests" / "runtimes" / "scenario_gcf.py"
        self._ff = FunctionsFramework(source, "gcf", env=app_env(live))
        self._http = httpx.Client(base_url=self._ff.url, trust_env=False, timeout=60)

    def close(self) -> None:
        self._http.close()
        self._ff.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(make_config(db_path=str(tmp_path_factory.mktemp("rt") / "emit.sqlite3")))
    yield server
    server.stop()


@pytest.fixture(scope="module", params=RUNTIMES)
def runtime(request: pytest.FixtureRequest, live: LiveServer) -> Iterator[Runtime]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        made: Runtime
        if request.param == "uvicorn":
            made = Uvicorn(live, monkeypatch)
        elif request.param == "lambda":
            made = Lambda(live)
        else:
            made = CloudFunctions(live)
        yield made
        made.close()
