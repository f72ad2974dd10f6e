"""Outbound connections: every push and callback connects only where ``_addresses`` allows.

A URL's host is checked three times. By its spelling when the URL is given (``_outbound``,
a 400). By what it resolves to, also when it is given (:func:`resolved_problem`, a 400;
a name that does not resolve yet is accepted). And at every connection, by the network
backend of the client that sends (``_guarded.GuardedBackend``): it resolves the name itself,
refuses when any address is forbidden, connects to the very address it checked (so a DNS
answer that changes between the check and the connection, DNS rebinding, cannot slip in),
and checks the peer of the socket it got once more (``_guarded``). A refused connection
raises :class:`DestinationRefused` before any packet leaves.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable

from ._addresses import Address, address_problem, parse_ip
from ._config import Resolver
from ._errors import bad_request
from ._outbound import REFUSED, url_host

__all__ = [
    "DestinationRefused",
    "refuse_resolved",
    "resolve",
    "resolved_problem",
    "system_resolver",
]


RESOLVE_TIMEOUT = 2.0
"""Seconds a push or callback host has to resolve when its URL is given."""


class DestinationRefused(Exception):
    """A push or callback would have reached a destination that is not allowed."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``getaddrinfo`` gives for ``host`` (TCP), in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def resolve(resolver: Resolver, host: str, port: int) -> list[Address]:
    """``host``'s addresses: the literal itself, or what ``resolver`` answers (OSError when
    it answers nothing usable)."""
    literal = parse_ip(host)
    if literal is not None:
        return [literal]
    addresses = [parse_ip(text) for text in await resolver(host, port)]
    found = [address for address in addresses if address is not None]
    if not found:
        raise OSError(f"{host} has no address")
    return list(dict.fromkeys(found))


def first_problem(addresses: Iterable[Address]) -> str | None:
    return next(filter(None, map(address_problem, addresses)), None)


async def resolved_problem(resolver: Resolver, host: str, port: int, timeout: float) -> str | None:
    """What refused address ``host`` resolves to now (``"a link-local address"``), or None.

    A name that does not resolve (yet), or not within ``timeout`` seconds, is no problem
    here: it is checked again at each connection.
    """
    try:
        async with asyncio.timeout(timeout):
            addresses = await resolve(resolver, host, port)
    except (OSError, TimeoutError, UnicodeError):
        return None
    return first_problem(addresses)


async def refuse_resolved(
    resolver: Resolver | None, urls: Iterable[tuple[str, str | None]]
) -> None:
    """400 naming the first field whose URL's host resolves to a refused address now.

    ``urls`` are ``(field, url)`` of URLs already checked by their spelling. Each name is
    resolved once, all at once; one that does not resolve is let through (every
    connection is checked anyway).
    """
    fields: dict[tuple[str, int], str] = {}
    for field, url in urls:
        target = url_host(url) if url else None
        if target is not None and parse_ip(target[0]) is None:
            fields.setdefault(target, field)
    if not fields:
        return
    problems = await asyncio.gather(
        *(
            resolved_problem(resolver or system_resolver, name, port, RESOLVE_TIMEOUT)
            for name, port in fields
        )
    )
    for (name, _), field, problem in zip(fields, fields.values(), problems, strict=True):
        if problem:
            raise bad_request(f"{field}: {name} resolves to {problem}; {REFUSED}")
