"""The API clients of the SDK: a space, a key, ``client.jobs`` and ``client.send``.

``Client`` and ``AsyncClient`` are what an ``EmitPush`` makes, one per event loop; the
public ``EmitClient`` and ``AsyncEmitClient`` (``emit_push._client``) are made on them and
add ``client.realtime`` and ``client.workers``.

Construction reads and checks the settings (``ConfigurationError`` at once, not at the
first call) and sets up the HTTP client; everything else is in ``jobs`` (the methods),
``_wire.endpoints`` (the requests) and ``transport`` (sending, retries). ``client.jobs``
is made on first use: the client an ``EmitPush`` makes for a push only sends calls, and
a Lambda's first push does not load the methods, the claimed-job helpers' logger or the
wire models with them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Self, TypeVar

import httpx

from .._exceptions import ConfigurationError
from .config import ApiKey, ApiKeyHeader, ClientConfig, load_config
from .transport import AsyncDriver, SyncDriver

if TYPE_CHECKING:
    from .._wire.endpoints import Call
    from .jobs import AsyncJobs, Jobs

__all__ = ["AsyncClient", "Client"]

T = TypeVar("T")
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def _check_http(
    name: str, http_client: object, transport: object, kind: type, transport_kind: type
) -> None:
    if http_client is not None and transport is not None:
        raise ConfigurationError(f"{name}: pass http_client= or transport=, not both")
    if http_client is not None and not isinstance(http_client, kind):
        raise ConfigurationError(f"{name}: http_client must be an httpx.{kind.__name__}")
    if transport is not None and not isinstance(transport, transport_kind):
        raise ConfigurationError(f"{name}: transport must be an httpx.{transport_kind.__name__}")


def _repr(name: str, config: ClientConfig) -> str:
    return f"{name}(space_id={config.space_id!r}, base_url={config.base_url!r})"


class Client:
    """The emit.run API for sync code, scoped to one space.

    Every setting defaults from the environment (``EMIT_SPACE_ID``, ``EMIT_API_KEY``,
    ``EMIT_BASE_URL``). ``api_key`` may be a function returning the current key, called
    before every request, retries included (for rotation; what it raises propagates as
    is). ``api_key_header="authorization"`` sends ``Authorization: Bearer <key>``.
    ``http_client`` (kept open on close) or ``transport`` replace the HTTP client the
    client makes. Use it as a context manager, or call ``close()``.

        with EmitClient() as client:
            ref = client.jobs.create({"name": "send-email", "payload": {"to": "a@b.c"}})
            for job in client.jobs.poll(types="send-email"):
                with job:
                    job.ack()
                    job.complete({"sent": True})

    Requests that fail with 429, 5xx, a timeout or a dropped connection are retried up to
    ``max_retries`` times with exponential backoff; see ``_wire.retry`` for what is safe to retry.
    """

    def __init__(
        self,
        *,
        space_id: str | None = None,
        api_key: ApiKey | None = None,
        base_url: str | None = None,
        api_key_header: ApiKeyHeader = "x-api-key",
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = 2,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._config = load_config(
            client=type(self).__name__, space_id=space_id, api_key=api_key, base_url=base_url,
            api_key_header=api_key_header, headers=headers, timeout=timeout,
            max_retries=max_retries, allow_async_key=False,
        )  # fmt: skip
        _check_http(type(self).__name__, http_client, transport, httpx.Client, httpx.BaseTransport)
        http = http_client or httpx.Client(
            transport=transport, timeout=self._config.timeout or DEFAULT_TIMEOUT
        )
        self._driver = SyncDriver(self._config, http, owns_http=http_client is None)

    @functools.cached_property
    def jobs(self) -> Jobs:
        """Create, read and work jobs."""
        from .jobs import Jobs

        return Jobs(self._driver)

    @property
    def space_id(self) -> str:
        """The space every call is scoped to."""
        return self._config.space_id

    @property
    def config(self) -> ClientConfig:
        """The settings this client was made with (its repr leaves the key out)."""
        return self._config

    @property
    def base_url(self) -> str:
        """The API's base URL, e.g. ``https://emit.run/api/v1``."""
        return self._config.base_url

    def send(self, call: Call[T], *, until: float | None = None) -> T:
        """Send one call of ``emit_push._wire.endpoints`` (with retries); its parsed answer.

        Every method of ``jobs`` and of a claimed job is one such call. ``until`` (a
        ``time.monotonic()`` value) keeps retrying past ``max_retries`` until that time.
        """
        return self._driver.send(call, until)

    def close(self) -> None:
        """Close the HTTP client (unless it was passed in as ``http_client``)."""
        self._driver.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return _repr(type(self).__name__, self._config)


class AsyncClient:
    """The emit.run API for async code, scoped to one space; see ``EmitClient``.

    ``api_key`` may also be an async function.

        async with AsyncEmitClient() as client:
            for job in await client.jobs.poll(types="send-email"):
                async with job:
                    await job.ack()
                    job.log.info("sending")
                    await job.complete({"sent": True})
    """

    def __init__(
        self,
        *,
        space_id: str | None = None,
        api_key: ApiKey | None = None,
        base_url: str | None = None,
        api_key_header: ApiKeyHeader = "x-api-key",
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = load_config(
            client=type(self).__name__, space_id=space_id, api_key=api_key, base_url=base_url,
            api_key_header=api_key_header, headers=headers, timeout=timeout,
            max_retries=max_retries, allow_async_key=True,
        )  # fmt: skip
        _check_http(
            type(self).__name__,
            http_client,
            transport,
            httpx.AsyncClient,
            httpx.AsyncBaseTransport,
        )
        http = http_client or httpx.AsyncClient(
            transport=transport, timeout=self._config.timeout or DEFAULT_TIMEOUT
        )
        self._driver = AsyncDriver(self._config, http, owns_http=http_client is None)

    @functools.cached_property
    def jobs(self) -> AsyncJobs:
        """Create, read and work jobs."""
        from .jobs import AsyncJobs

        return AsyncJobs(self._driver)

    @property
    def space_id(self) -> str:
        """The space every call is scoped to."""
        return self._config.space_id

    @property
    def config(self) -> ClientConfig:
        """The settings this client was made with (its repr leaves the key out)."""
        return self._config

    @property
    def base_url(self) -> str:
        """The API's base URL, e.g. ``https://emit.run/api/v1``."""
        return self._config.base_url

    async def send(self, call: Call[T], *, until: float | None = None) -> T:
        """Send one call of ``emit_push._wire.endpoints`` (with retries); its parsed answer.

        Every method of ``jobs`` and of a claimed job is one such call. ``until`` (a
        ``time.monotonic()`` value) keeps retrying past ``max_retries`` until that time.
        """
        return await self._driver.send(call, until)

    async def aclose(self) -> None:
        """Close the HTTP client (unless it was passed in as ``http_client``)."""
        await self._driver.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return _repr(type(self).__name__, self._config)
