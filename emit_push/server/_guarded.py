"""The guarded network backend: httpcore's, connecting only where ``_addresses`` allows.

See ``_egress`` for where this stands among the checks. Loaded when the scheduler makes
its client (httpcore comes with it), not when the server is imported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from ._addresses import address_problem, parse_ip
from ._config import Resolver
from ._egress import DestinationRefused, first_problem, resolve, system_resolver

__all__ = ["GuardedBackend", "GuardedTransport", "guarded_client"]


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to allowed addresses (module docstring)."""

    def __init__(self, resolver: Resolver, inner: httpcore.AsyncNetworkBackend | None = None):
        self._resolver = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await resolve(self._resolver, host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except (OSError, UnicodeError):
            raise httpcore.ConnectError(f"could not resolve {host}") from None
        if problem := first_problem(addresses):
            raise DestinationRefused(f"{host} resolves to {problem}")
        error: Exception | None = None
        for address in addresses:  # each was checked: connect to it, not to the name
            try:
                stream = await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
                continue
            peer = stream.get_extra_info("server_addr")
            peer_address = parse_ip(str(peer[0])) if peer else None
            if peer_address is None or address_problem(peer_address):
                await stream.aclose()
                raise DestinationRefused(f"{host} connected to a refused address")
            return stream
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("Unix sockets are not a destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a pool whose every connection goes through ``backend``."""

    def __init__(self, backend: GuardedBackend) -> None:
        context = httpx.create_ssl_context(trust_env=False)  # httpx's default: certifi's CAs
        super().__init__(verify=context, trust_env=False)
        # httpx takes no network backend; its pool is the one part to replace.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=backend,
        )


def guarded_client(resolver: Resolver | None) -> httpx.AsyncClient:
    """The client pushes and callbacks are sent with: no proxies, no redirects, and
    connections only to allowed addresses. (This module is loaded with the scheduler's
    first sender, not with the server's import: httpcore is httpx's to load.)"""
    transport = GuardedTransport(GuardedBackend(resolver or system_resolver))
    return httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False)
