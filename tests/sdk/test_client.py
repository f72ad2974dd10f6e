"""Constructing clients: settings, the environment, the key (rotation, and secrecy)."""

from __future__ import annotations

import functools
import gc
import logging
import socket
import time
import traceback
from typing import Any

import httpx
import pytest

from emit_push import (
    APIConnectionError,
    APITimeoutError,
    AsyncEmitClient,
    AuthenticationError,
    ConfigurationError,
    EmitClient,
    EmitError,
    ServerError,
)
from tests.conftest import ADMIN_KEY, WORKER_KEY
from tests.sdk.conftest import MOCK_URL, Sdk

SECRET = "emit_SUPERSECRET_do_not_print_0123456789abcdef"
CLIENTS = [EmitClient, AsyncEmitClient]


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EMIT_SPACE_ID", "EMIT_API_KEY", "EMIT_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def _job(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"id": "j1", "name": "n", "status": "pending"})


@pytest.mark.parametrize("cls", CLIENTS)
def test_settings_default_from_the_environment(cls: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMIT_SPACE_ID", "space_1")
    monkeypatch.setenv("EMIT_API_KEY", SECRET)
    monkeypatch.setenv("EMIT_BASE_URL", "http://127.0.0.1:9/api/v1/")
    client = cls()
    assert (client.space_id, client.base_url) == ("space_1", "http://127.0.0.1:9/api/v1")
    assert cls(space_id="space_2").space_id == "space_2"  # arguments win


@pytest.mark.parametrize("cls", CLIENTS)
def test_without_settings_the_default_base_url_is_emit_run(cls: Any) -> None:
    assert cls(space_id="s", api_key="k").base_url == "https://emit.run/api/v1"


@pytest.mark.parametrize("cls", CLIENTS)
def test_missing_settings_fail_at_construction(cls: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        cls()
    message = str(caught.value)
    assert "space_id=" in message
    assert "EMIT_SPACE_ID" in message
    assert "api_key=" in message
    assert "EMIT_API_KEY" in message
    with pytest.raises(ConfigurationError, match="api_key"):
        cls(space_id="s")


@pytest.mark.parametrize("cls", CLIENTS)
@pytest.mark.parametrize(
    "options",
    [
        {"base_url": "ftp://emit.run"},
        {"base_url": "not a url"},
        {"base_url": f"https://user:{SECRET}@emit.run/api/v1"},
        {"base_url": f"ftp://user:{SECRET}@emit.run/api/v1"},  # wrong scheme and credentials
        {"base_url": f"user:{SECRET}@emit.run/api/v1"},  # no scheme
        {"base_url": f"https://:{SECRET}@emit.run:port/api/v1"},  # unparsable, with credentials
        {"base_url": 42},
        {"api_key_header": "x-token"},
        {"max_retries": -1},
        {"timeout": 0},
        {"timeout": float("nan")},
        {"timeout": float("inf")},
        {"timeout": httpx.Timeout(5.0, read=float("nan"))},
        {"space_id": "   "},
        {"space_id": 7},
        {"headers": {"x-trace": 1}},
        {"headers": {b"x-trace": "t"}},
        {"headers": {"x trace": "t"}},
        {"headers": {"x-secret": f"{SECRET}\r\nx-injected: 1"}},
        {"headers": [("x-trace", "t")]},
        {"api_key": "   "},
        {"api_key": 42},
        {"http_client": object()},
    ],
)
def test_invalid_settings_fail_at_construction(cls: Any, options: dict[str, Any]) -> None:
    options = {"space_id": "s", "api_key": "k", **options}
    with pytest.raises(ConfigurationError) as caught:
        cls(**options)
    assert SECRET not in "".join(traceback.format_exception(caught.value))  # causes too


@pytest.mark.parametrize("cls", CLIENTS)
def test_settings_are_tidied(cls: Any) -> None:
    client = cls(space_id="  s1 ", api_key="k", headers={"X-Trace": "t1"})
    assert client.space_id == "s1"
    assert client._config.headers["x-trace"] == "t1"


async def test_the_timeout_option_takes_effect(offline: Sdk) -> None:
    """A server that accepts the connection and never answers: the read times out."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        client = offline.client(
            base_url=f"http://127.0.0.1:{port}/api/v1", timeout=0.2, max_retries=0
        )
        started = time.monotonic()
        with pytest.raises(APITimeoutError) as caught:
            await offline(client.jobs.get("j1"))
        assert time.monotonic() - started < 2  # the default would wait 30 s
        assert caught.value.request_sent


def test_the_http_client_must_match_the_kind() -> None:
    with pytest.raises(ConfigurationError, match="httpx.Client"):
        EmitClient(space_id="s", api_key="k", http_client=httpx.AsyncClient())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not both"):
        AsyncEmitClient(
            space_id="s",
            api_key="k",
            http_client=httpx.AsyncClient(),
            transport=httpx.MockTransport(_job),
        )

    async def key() -> str:
        return "k"

    class Vault:
        async def __call__(self) -> str:
            return "k"

    for async_key in (key, Vault(), functools.partial(key)):
        with pytest.raises(ConfigurationError, match="AsyncEmitClient"):
            EmitClient(space_id="s", api_key=async_key)  # type: ignore[arg-type]


async def test_headers_and_the_bearer_scheme(offline: Sdk) -> None:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(httpx.Headers(request.headers))  # the key is taken off after the send
        return _job(request)

    plain = offline.mock(handler, api_key="k1", headers={"X-Trace": "t1"})
    bearer = offline.mock(handler, api_key="k2", api_key_header="Authorization")
    await offline(plain.jobs.get("j1"))
    await offline(bearer.jobs.get("j1"))
    assert (seen[0]["x-api-key"], seen[0]["x-trace"]) == ("k1", "t1")
    assert "authorization" not in seen[0]
    assert seen[0]["user-agent"].startswith("emit-push/")
    assert seen[1]["authorization"] == "Bearer k2"
    assert "x-api-key" not in seen[1]


async def test_an_injected_http_client_is_used_and_left_open(offline: Sdk) -> None:
    transport = httpx.MockTransport(_job)
    if offline.is_async:
        http: Any = httpx.AsyncClient(transport=transport)
    else:
        http = httpx.Client(transport=transport)
    client = offline.client(http_client=http, base_url=MOCK_URL)
    assert (await offline(client.jobs.get("j1"))).id == "j1"
    await offline.close(client)
    assert not http.is_closed
    await offline.close(http)


async def test_the_key_function_is_called_for_every_request(offline: Sdk) -> None:
    """Rotation: each request, retries included, carries the key current at its send."""
    keys = iter(f"key_{n}" for n in range(100))
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["x-api-key"])
        if len(sent) == 2:
            return httpx.Response(503)
        return _job(request)

    if offline.is_async:

        async def resolver() -> str:
            return next(keys)
    else:

        def resolver() -> str:
            return next(keys)

    client = offline.mock(handler, api_key=resolver)
    await offline(client.jobs.get("j1"))
    await offline(client.jobs.get("j1"))  # 503, then retried
    assert sent == ["key_0", "key_1", "key_2"]


async def test_the_key_function_works_against_the_server(sdk: Sdk) -> None:
    keys = [WORKER_KEY, ADMIN_KEY]
    client = sdk.client(lambda: keys[0])
    ref = await sdk(sdk.client().jobs.create({"name": "rotate"}))
    assert (await sdk(client.jobs.get(ref.id))).id == ref.id
    keys[0] = "emit_revoked"
    with pytest.raises(AuthenticationError):
        await sdk(client.jobs.get(ref.id))
    keys[0] = ADMIN_KEY
    assert (await sdk(client.jobs.get(ref.id))).id == ref.id


async def test_a_key_function_returning_nonsense_is_a_configuration_error(offline: Sdk) -> None:
    client = offline.mock(_job, api_key=lambda: None)
    with pytest.raises(ConfigurationError, match="non-empty string"):
        await offline(client.jobs.get("j1"))


async def test_the_key_appears_in_no_error_repr_or_log(
    offline: Sdk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = iter(
        [
            httpx.Response(
                401, json={"error": f"Invalid API key {SECRET}", "code": "unauthorized"}
            ),
            httpx.Response(500, text=f"crash while handling x-api-key: {SECRET}"),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers, None)
        if answer is None:
            raise httpx.ConnectError("refused", request=request)
        return answer

    client = offline.mock(handler, api_key=SECRET, max_retries=0)
    errors: list[EmitError] = []
    for expected in (AuthenticationError, ServerError, APIConnectionError):
        with pytest.raises(expected) as caught:
            await offline(client.jobs.get("j1"))
        errors.append(caught.value)
    texts = [repr(client), str(client), repr(client._config), repr(client.jobs), caplog.text]
    for error in errors:
        texts += [str(error), repr(error), repr(vars(error)), *traceback.format_exception(error)]
        cause = error.__cause__
        if isinstance(cause, httpx.RequestError):
            texts += [str(cause), repr(cause.request.headers), repr(dict(cause.request.headers))]
    for text in texts:
        assert SECRET not in text
    assert "[redacted]" in errors[0].message
    gc.collect()
