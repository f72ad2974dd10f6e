"""SDK fixtures: every test body runs for both clients through a small adapter.

``sdk`` makes clients of the test's kind (``EmitClient`` or ``AsyncEmitClient``) against
the live server; ``await sdk(x)`` awaits ``x`` when the client is async, so one body
serves both. ``Faults`` is an ``httpx.MockTransport`` handler that forwards to the live
server over real HTTP, and injects 503s, 429s and dropped connections on demand.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from emit_push import AsyncEmitClient, EmitClient
from tests.conftest import ADMIN_KEY, SPACE, LiveServer

Client = EmitClient | AsyncEmitClient
MOCK_URL = "http://emit.test/api/v1"


class Sdk:
    """Clients of one kind, and the means to run one test body for both kinds."""

    def __init__(self, kind: str, base_url: str) -> None:
        self.kind = kind
        self.is_async = kind == "async"
        self.base_url = base_url
        self.sleeps: list[float] = []
        self._clients: list[Client] = []

    def client(self, key: Any = ADMIN_KEY, *, record_sleeps: bool = True, **options: Any) -> Any:
        """A client of this kind; retries sleep into ``self.sleeps`` instead of the clock."""
        options.setdefault("base_url", self.base_url)
        options.setdefault("space_id", SPACE)
        if "transport" not in options and "http_client" not in options:
            # An explicit transport ignores proxy settings of the environment: loopback only.
            options["transport"] = (
                httpx.AsyncHTTPTransport() if self.is_async else httpx.HTTPTransport()
            )
        cls = AsyncEmitClient if self.is_async else EmitClient
        client = cls(**{"api_key": key, **options})
        if record_sleeps:
            if self.is_async:

                async def sleep(seconds: float) -> None:
                    self.sleeps.append(seconds)

                client._driver.sleep = sleep
            else:
                client._driver.sleep = self.sleeps.append
        self._clients.append(client)
        return client

    def mock(self, handler: Callable[[httpx.Request], Any], **options: Any) -> Any:
        """A client whose requests go to ``handler`` (sync, or async for the async kind)."""
        options.setdefault("base_url", MOCK_URL)
        return self.client(transport=httpx.MockTransport(handler), **options)

    async def __call__(self, value: Any) -> Any:
        return await value if inspect.isawaitable(value) else value

    async def close(self, thing: Any) -> None:
        """Close a client or a claimed job of either kind."""
        await self(thing.aclose() if self.is_async else thing.close())

    async def aclose(self) -> None:
        for client in self._clients:
            await self.close(client)


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def sdk(kind: str, live_server: LiveServer) -> AsyncIterator[Sdk]:
    """Clients of the test's kind against the live server (real uvicorn)."""
    s = Sdk(kind, live_server.base_url)
    yield s
    await s.aclose()


@pytest.fixture
async def offline(kind: str) -> AsyncIterator[Sdk]:
    """Clients of the test's kind for MockTransport tests (no server)."""
    s = Sdk(kind, MOCK_URL)
    yield s
    await s.aclose()


@dataclass
class Faults:
    """A MockTransport handler: forwards to the live server, with scripted faults.

    ``plan(suffix, *faults)`` queues faults for requests whose path ends with ``suffix``
    (and whose method is ``method``, when given): ``"503"``/``"429"``/``"502"`` answer at
    once (not forwarded); ``"refused"`` raises ConnectError (never sent); ``"drop"``
    forwards, then loses the answer (ReadError); ``"timeout"`` forwards, then raises
    ReadTimeout; ``"lost502"`` forwards, then answers 502 (a gateway that lost the
    answer); ``"ok"`` forwards. ``before`` runs before a fault.
    """

    base_url: str
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, outcome
    _plans: dict[tuple[str | None, str], list[str]] = field(default_factory=dict)
    _hooks: dict[tuple[str | None, str], Callable[[], None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._real = httpx.Client(trust_env=False)

    def plan(
        self,
        suffix: str,
        *faults: str,
        before: Callable[[], None] | None = None,
        method: str | None = None,
    ) -> None:
        self._plans.setdefault((method, suffix), []).extend(faults)
        if before is not None:
            self._hooks[(method, suffix)] = before

    def calls(self, suffix: str, method: str | None = None) -> list[str]:
        """Outcomes of the requests whose path ends with ``suffix``, in order."""
        return [
            outcome
            for m, path, outcome in self.seen
            if path.endswith(suffix) and method in {None, m}
        ]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        with self._lock:
            key = next(
                (
                    (m, s)
                    for (m, s), plan in self._plans.items()
                    if plan and path.endswith(s) and m in {None, request.method}
                ),
                None,
            )
            fault = self._plans[key].pop(0) if key else "ok"
            self.seen.append((request.method, path, fault))
        if key and key in self._hooks:
            self._hooks[key]()
        if fault in {"503", "429", "502"}:
            headers = {"retry-after": "0"} if fault == "429" else {}
            body = {"error": f"injected {fault}", "code": "injected"}
            return httpx.Response(int(fault), headers=headers, json=body)
        if fault == "refused":
            raise httpx.ConnectError("injected: connection refused", request=request)
        url = self.base_url.split("/api/v1")[0] + path
        real = self._real.request(
            request.method,
            url,
            params=request.url.params,
            content=request.content,
            headers=request.headers,
        )
        if fault == "drop":
            raise httpx.ReadError("injected: connection dropped", request=request)
        if fault == "timeout":
            raise httpx.ReadTimeout("injected: read timed out", request=request)
        if fault == "lost502":
            return httpx.Response(502, text="Bad Gateway")
        headers = [(k, v) for k, v in real.headers.multi_items() if k != "content-encoding"]
        return httpx.Response(real.status_code, headers=headers, content=real.content)

    def close(self) -> None:
        self._real.close()


@pytest.fixture
def faults(live_server: LiveServer) -> Any:
    f = Faults(live_server.base_url)
    yield f
    f.close()
