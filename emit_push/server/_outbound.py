"""Where pushes and callbacks go: URL and header checks, and safe descriptions of failures.

Checked once at the API boundary (a 400 naming the field), so that what the scheduler later
sends is sendable; and when a send fails anyway (an old database, a receiver that went
away), :func:`describe_failure` says what happened without echoing header values: the
push secret is exactly such a value. A URL whose host is refused (``_addresses``: cloud
metadata, link-local, ...) is refused here by its spelling; names are checked again each
time they are resolved (``_egress``). Headers that would choose the ``Host``, talk to a
metadata service or speak for the connection are refused too, and dropped if met at send.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

import httpx

from ._addresses import host_problem

__all__ = [
    "MAX_HEADERS",
    "REFUSED",
    "check_headers",
    "check_url",
    "describe_briefly",
    "describe_failure",
    "sendable_headers",
    "url_host",
]

MAX_URL_CHARS = 2048
REFUSED = "pushes and callbacks may not go there"
MAX_HEADERS = 64
MAX_HEADER_VALUE_CHARS = 8192
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]{1,256}")  # RFC 7230 field-name
# Visible ASCII, inner spaces and tabs, nothing around them (what h11 will send).
_VALUE = re.compile(r"(?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?")
_HOST = re.compile(r"[A-Za-z0-9._~-]+")
_FRAMING = frozenset({"content-length", "transfer-encoding"})  # the server frames the body
# Never the caller's: the host comes from the URL, hop-by-hop headers belong to the
# connection, and these are how cloud metadata services tell a wanted request (GCP's
# Metadata-Flavor, Azure's Metadata, AWS's IMDSv2 token).
_SERVERS = frozenset(
    {"host", "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"}
)
_PROXY = frozenset({"proxy-authorization", "proxy-authenticate"})
_METADATA = frozenset(
    {
        "metadata-flavor",
        "metadata",
        "x-google-metadata-request",
        "x-aws-ec2-metadata-token",
        "x-aws-ec2-metadata-token-ttl-seconds",
    }
)
_MIN_REDACTED = 4  # shorter values would also blank out digits and words of the message


def check_url(url: str) -> str | None:
    """Why ``url`` cannot receive a POST, or None when it can."""
    if len(url) > MAX_URL_CHARS:
        return f"must be at most {MAX_URL_CHARS} characters"
    if any(c.isspace() or not c.isprintable() for c in url):
        return "must not contain spaces or control characters"
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
    except Exception:  # httpx.InvalidURL, idna.IDNAError, UnicodeError, ...
        # httpx refuses some spellings that resolvers take (0251.0376.0251.0376): say why.
        refused = _refused_host(urlsplit(url).hostname if "://" in url else None)
        return refused or "must be an http(s) URL"
    if parsed.scheme not in {"http", "https"}:
        return "must be an http(s) URL"
    if not host:
        return "must name a host"
    if not _HOST.fullmatch(host) and not _is_ipv6(host):
        return "must name a valid host"
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        return "port must be between 1 and 65535"
    return _refused_host(host)


def _refused_host(host: str | None) -> str | None:
    problem = host_problem(host) if host else None
    return None if problem is None else f"{problem}; {REFUSED}"


def url_host(url: str) -> tuple[str, int] | None:
    """The host (IPv6 without brackets) and port a checked ``url`` connects to."""
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
    except Exception:
        return None
    return host, parsed.port or (443 if parsed.scheme == "https" else 80)


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def check_headers(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """``(name, problem)`` for the first header that cannot be sent, or None.

    The problem never quotes the value (it may be a secret); a bad name is quoted, briefly.
    """
    if len(headers) > MAX_HEADERS:
        return "", f"at most {MAX_HEADERS} headers"
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            return "", f"{name[:40]!r} is not a valid header name (an RFC 7230 token)"
        if problem := _header_problem(name.lower()):
            return name, problem
        if len(value) > MAX_HEADER_VALUE_CHARS:
            return name, f"must be at most {MAX_HEADER_VALUE_CHARS} characters"
        if not _VALUE.fullmatch(value):
            return name, (
                "must be visible ASCII (inner spaces allowed), without control characters"
                " or surrounding whitespace"
            )
    return None


def _header_problem(lower: str) -> str | None:
    if lower in _FRAMING or lower in _SERVERS or lower in _PROXY:
        return "is set by the server"
    if lower in _METADATA:
        return "is a cloud metadata header: it may not be sent"
    return None


def sendable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` without those :func:`check_headers` refuses by name (an older server
    stored them): what is sent, whatever the database holds."""
    return {name: value for name, value in headers.items() if not _header_problem(name.lower())}


# Errors whose text is about the connection, never about what we tried to send.
_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_FIXED = {
    httpx.LocalProtocolError: "the HTTP client refused a header or the URL",
    httpx.InvalidURL: "invalid URL",
    httpx.UnsupportedProtocol: "unsupported URL scheme",
    UnicodeError: "a header or the URL is not ASCII",
}


def describe_failure(exc: BaseException, secrets: Iterable[object] = ()) -> str:
    """``"ConnectError: ..."`` for an attempt that raised ``exc``, fit for a job's events.

    Only transport errors keep their text (refused, reset, timed out); every other error,
    which may quote the request (h11 quotes an illegal header value), is described by a
    fixed phrase. ``secrets`` (the configured header values) are redacted from the result
    all the same.
    """
    name = type(exc).__name__
    if isinstance(exc, _TRANSPORT):
        text = str(exc)
    else:
        text = next((fixed for kind, fixed in _FIXED.items() if isinstance(exc, kind)), "")
    described = f"{name}: {text}" if text else name
    return redact(described, secrets)


def redact(text: str, secrets: Iterable[object]) -> str:
    """``text`` with every secret (and its escaped forms) replaced by ``[redacted]``."""
    for secret in secrets:
        if not isinstance(secret, str) or len(secret) < _MIN_REDACTED:
            continue
        for form in {secret, repr(secret)[1:-1], repr(secret.encode("utf-8", "replace"))[2:-1]}:
            text = text.replace(form, "[redacted]")
    return text


def describe_briefly(exc: BaseException) -> str:
    """What a callback attempt that raised ``exc`` records: a fixed phrase.

    A callback URL is chosen by whoever may create a job, and its outcome is read by
    whoever may read it; the words of the connection (refused or reset, the address,
    how long it took) would tell them which ports of this machine's networks answer. Only
    whether it connected, and whether it was answered in time, is told.
    """
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return "could not connect"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(exc, _TRANSPORT):
        return "the connection failed"
    return describe_failure(exc)
