"""Client settings: read once at construction, validated there, never printed with the key.

The settings an app also checks on its own (space, key, base URL) are in ``settings``;
this adds what only a client needs: headers, timeout, retries.
"""

from __future__ import annotations

import math
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from .._exceptions import ConfigurationError
from .._version import __version__
from .._wire.retry import RetryPolicy
from .settings import DEFAULT_BASE_URL, ApiKey, ApiKeyHeader, load_settings

__all__ = ["DEFAULT_BASE_URL", "ApiKey", "ApiKeyHeader", "ClientConfig", "load_config"]

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
    settings = load_settings(
        client=client, space_id=space_id, api_key=api_key, base_url=base_url,
        api_key_header=api_key_header, allow_async_key=allow_async_key,
    )  # fmt: skip
    return ClientConfig(
        space_id=settings.space_id,
        base_url=settings.base_url,
        api_key=settings.api_key,
        api_key_header=settings.api_key_header,
        headers={"user-agent": _USER_AGENT, "accept": "application/json", **_headers(headers)},
        timeout=_timeout(timeout),
        retry=RetryPolicy(max_retries=_max_retries(max_retries)),
    )


# An HTTP header name (RFC 9110); compiled (and cached by `re`) when headers are given.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"


def _headers(headers: object) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ConfigurationError(f"headers must be a mapping, got {type(headers).__name__}")
    checked = {}
    for name, value in headers.items():
        # Values are never echoed: custom headers often carry secrets.
        if not isinstance(name, str) or not re.fullmatch(_TOKEN, name):
            raise ConfigurationError(f"headers: {name!r} is not a valid header name")
        if not isinstance(value, str):
            raise ConfigurationError(
                f"headers: the value of {name!r} must be a string, got {type(value).__name__}"
            )
        if any(c in value for c in "\r\n\0"):
            raise ConfigurationError(f"headers: the value of {name!r} holds a line break or NUL")
        checked[name.lower()] = value
    return checked


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
