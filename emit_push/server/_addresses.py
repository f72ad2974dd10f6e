"""Where pushes and callbacks may not go: link-local, cloud metadata, unspecified, multicast,
broadcast and reserved destinations, in every notation a resolver would accept.

Pure functions over host names and addresses. A host is read the way ``getaddrinfo`` reads
it, so that no spelling slips past: IPv4 in the ``inet_aton`` forms (``0xa9fea9fe``,
``2852039166``, ``0251.0376.0251.0376``, ``169.254.43518``), a trailing dot, IPv6 with a
zone, and IPv4 carried inside IPv6 (mapped ``::ffff:a.b.c.d``, compatible ``::a.b.c.d``,
translated, NAT64 ``64:ff9b::/96``, 6to4 and Teredo). Loopback stays allowed: the local
server pushes to apps on the developer's machine. Private networks stay allowed too (a
container or another machine on the LAN); the link-local range is refused whole, as the
metadata services of every cloud live there.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["Address", "address_problem", "host_problem", "parse_ip"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
        "metadata.packet.net",
    }
)
"""Names of cloud metadata services (compared without case or a trailing dot)."""

_METADATA = tuple(
    ipaddress.ip_network(net)
    for net in (
        "169.254.169.254/32",  # AWS, GCP, Azure, OCI, DigitalOcean, OpenStack, ...
        "169.254.170.2/32",  # AWS ECS task metadata
        "100.100.100.200/32",  # Alibaba Cloud
        "fd00:ec2::/32",  # AWS IMDS, DNS and time over IPv6 (fd00:ec2::254, ...)
    )
)
_V4_RULES = tuple(
    (ipaddress.IPv4Network(net), why)
    for net, why in (
        ("0.0.0.0/8", "an unspecified address"),
        ("169.254.0.0/16", "a link-local address"),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
    )
)
_V6_RULES = tuple(
    (ipaddress.IPv6Network(net), why)
    for net, why in (
        ("::/128", "an unspecified address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a link-local address"),  # site-local, deprecated: link scope in practice
        ("ff00::/8", "a multicast address"),
    )
)
_COMPATIBLE = ipaddress.IPv6Network("::/96")  # ::a.b.c.d, deprecated IPv4-compatible
_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT ::ffff:0:a.b.c.d
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
# One inet_aton part: hex, octal (a leading 0) or decimal.
_PART = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")


def parse_ip(host: str) -> Address | None:
    """The address ``host`` denotes when it is an IP literal in any notation, else None.

    ``host`` as in a URL, brackets and all (``[::1]``); a trailing dot is ignored.
    """
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host.endswith(".") and not host.endswith(".."):
        host = host[:-1]
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.replace("%25", "%", 1))
        except ValueError:
            return None
    return _inet_aton(host)


def _inet_aton(text: str) -> ipaddress.IPv4Address | None:
    """IPv4 as C's ``inet_aton`` (and so ``getaddrinfo``) reads it: ``a``, ``a.b``,
    ``a.b.c`` or ``a.b.c.d``, each part decimal, octal or hex, the last filling the rest."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(_PART.fullmatch(part) for part in parts):
        return None
    values = [
        int(part, 16 if part[:2] in {"0x", "0X"} else 8 if part[0] == "0" else 10) for part in parts
    ]
    *head, last = values
    if any(value > 255 for value in head) or last >= 256 ** (5 - len(values)):
        return None
    number = last
    for index, value in enumerate(head):
        number |= value << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


def address_problem(address: Address) -> str | None:
    """Why nothing may be sent to ``address`` (``"a link-local address"``), or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        address = ipaddress.IPv6Address(str(address).split("%")[0])
    if any(address in net for net in _METADATA if net.version == address.version):
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv4Address):
        return next((why for net, why in _V4_RULES if address in net), None)
    if address == ipaddress.IPv6Address("::1"):
        return None
    if found := next((why for net, why in _V6_RULES if address in net), None):
        return found
    inner = _embedded_ipv4(address)
    if inner is not None and (problem := address_problem(inner)):
        return f"{problem} (as IPv4 inside IPv6)"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (and reaches, through a translator), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _COMPATIBLE or address in _TRANSLATED or any(address in n for n in _NAT64):
        return low32
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client: where the relay delivers
    return None


def host_problem(host: str) -> str | None:
    """Why a URL's ``host`` is refused before any resolution, or None.

    ``"metadata.google.internal is a cloud metadata host"``, ``"0xa9fea9fe is a link-local
    address"``: the host as given, then what it is.
    """
    bare = host.lower()
    if bare.endswith(".") and not bare.endswith(".."):
        bare = bare[:-1]
    if bare in METADATA_NAMES:
        return f"{host} is a cloud metadata host"
    address = parse_ip(host)
    if address is None:
        return None
    problem = address_problem(address)
    if problem is None:
        return None
    plain = isinstance(address, ipaddress.IPv6Address) or str(address) == host
    return f"{host if plain else f'{host} ({address})'} is {problem}"
