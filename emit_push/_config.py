"""Client settings: read once at construction, validated there, never printed with the key."""

from __future__ import annotations

import inspect
import math
import os
import platform
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import httpx

from ._exceptions import ConfigurationError
from ._retry import RetryPolicy
from ._version import __version__

__all__ = ["DEFAULT_BASE_URL", "ApiKey", "ApiKeyHeader", "ClientConfig", "load_config"]

DEFAULT_BASE_URL = "https://emit.run/api/v1"

ApiKey = str | Callable[[], str] | Callable[[], Awaitable[str]]
"""An API key, or a function that returns the current one (called before every request)."""

ApiKeyHeader = Literal["x-api-key", "authorization"]
"""Where the key goes: ``x-api-key: <key>`` or ``Authorization: Bearer <key>``."""

_USER_AGENT = (
    f"emit-push/{__version__} python/{platform.python_version()} httpx/{httpx.__version__}"
)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything a client needs to send a request, except the I/O."""

    space_id: str
    base_url: str
    api_key: ApiKey = field(repr=False)
    api_key_header: ApiKeyHeader = field(default="x-api-key", repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: httpx.Timeout | None = field(default=None, repr=False)
    retry: RetryPolicy = field(default_factory=RetryPolicy, repr=False)

    def auth_header(self, key: str) -> tuple[str, str]:
        """The header that carries ``key``."""
        if self.api_key_header == "authorization":
            return "authorization", f"Bearer {key}"
        return "x-api-key", key


def load_config(
    *,
    client: str,
    space_id: str | None,
    api_key: ApiKey | None,
    base_url: str | None,
    api_key_header: str,
    headers: Mapping[str, str] | None,
    timeout: float | httpx.Timeout | None,
    max_retries: int,
    allow_async_key: bool,
) -> ClientConfig:
    """Settings from the arguments, else ``EMIT_SPACE_ID``/``EMIT_API_KEY``/``EMIT_BASE_URL``."""
    space_id = space_id or os.environ.get("EMIT_SPACE_ID") or None
    api_key = api_key or os.environ.get("EMIT_API_KEY") or None
    base_url = base_url or os.environ.get("EMIT_BASE_URL") or DEFAULT_BASE_URL
    missing = [
        f"{arg}= (or {env})"
        for arg, env, value in [
            ("space_id", "EMIT_SPACE_ID", space_id),
            ("api_key", "EMIT_API_KEY", api_key),
        ]
        if value is None
    ]
    if missing:
        raise ConfigurationError(f"{client} needs {' and '.join(missing)}")
    assert space_id is not None
    assert api_key is not None
    return ClientConfig(
        space_id=_space_id(space_id),
        base_url=_base_url(base_url),
        api_key=_api_key(api_key, client, allow_async_key),
        api_key_header=_key_header(api_key_header),
        headers={"user-agent": _USER_AGENT, "accept": "application/json", **_headers(headers)},
        timeout=_timeout(timeout),
        retry=RetryPolicy(max_retries=_max_retries(max_retries)),
    )


def _api_key(api_key: ApiKey, client: str, allow_async: bool) -> ApiKey:
    if isinstance(api_key, str):
        if not api_key.strip():
            raise ConfigurationError("api_key is empty")
        return api_key.strip()
    if not callable(api_key):
        raise ConfigurationError(
            f"api_key must be a string or a function, got {type(api_key).__name__}"
        )
    if not allow_async and inspect.iscoroutinefunction(api_key):
        raise ConfigurationError(f"{client} needs a sync api_key function; use AsyncEmitClient")
    return api_key


def _space_id(value: object) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"space_id must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ConfigurationError("space_id is blank")
    return value.strip()


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an HTTP header name (RFC 9110)


def _headers(headers: object) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ConfigurationError(f"headers must be a mapping, got {type(headers).__name__}")
    checked = {}
    for name, value in headers.items():
        # Values are never echoed: custom headers often carry secrets.
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise ConfigurationError(f"headers: {name!r} is not a valid header name")
        if not isinstance(value, str):
            raise ConfigurationError(
                f"headers: the value of {name!r} must be a string, got {type(value).__name__}"
            )
        if any(c in value for c in "\r\n\0"):
            raise ConfigurationError(f"headers: the value of {name!r} holds a line break or NUL")
        checked[name.lower()] = value
    return checked


def _has_userinfo(value: str) -> bool:
    """Whether the URL's authority holds ``user[:password]@``, by its text alone.

    Checked before anything parses the URL, so that no error (nor the parser's, chained
    to ours) can show the credentials, whatever else is wrong with the URL.
    """
    rest = value.split("://", 1)[-1]
    return "@" in re.split(r"[/?#]", rest, maxsplit=1)[0]


def _base_url(value: object) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"base_url must be a string, got {type(value).__name__}")
    if _has_userinfo(value):
        raise ConfigurationError("base_url must not hold credentials (user:pass@); pass api_key=")
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigurationError(f"base_url is not a URL: {exc}") from exc
    if url.scheme not in {"http", "https"} or not url.host:
        raise ConfigurationError(f"base_url must be an http(s) URL, got {value!r}")
    if url.userinfo:  # the text check above should have caught it; never echo it
        raise ConfigurationError("base_url must not hold credentials (user:pass@); pass api_key=")
    if url.query or url.fragment:
        raise ConfigurationError("base_url must not have a query or fragment")
    return str(url).rstrip("/")


def _key_header(value: str) -> ApiKeyHeader:
    lowered = str(value).lower()
    if lowered == "x-api-key":
        return "x-api-key"
    if lowered == "authorization":
        return "authorization"
    raise ConfigurationError(
        f"api_key_header must be 'x-api-key' or 'authorization', got {value!r}"
    )


def _timeout(value: float | httpx.Timeout | None) -> httpx.Timeout | None:
    if value is None:
        return None
    if isinstance(value, httpx.Timeout):
        for part, seconds in value.as_dict().items():
            if seconds is not None and not _positive_seconds(seconds):
                raise ConfigurationError(
                    f"timeout: {part} must be a positive number, got {seconds!r}"
                )
        return value
    if not _positive_seconds(value):
        raise ConfigurationError(f"timeout must be a positive number of seconds, got {value!r}")
    return httpx.Timeout(float(value))


def _positive_seconds(value: object) -> bool:
    # nan and inf pass `> 0` checks (or fail them silently) and then break the HTTP client.
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value > 0
    )


def _max_retries(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"max_retries must be an integer >= 0, got {value!r}")
    return value
