"""The settings every client and app starts from: space, key, base URL, key header.

Read from the arguments, else ``EMIT_SPACE_ID``/``EMIT_API_KEY``/``EMIT_BASE_URL``, and
checked without I/O. ``app.runner.prepare()`` checks them at a cold start, before any
client exists, so nothing here imports httpx: a plain ``http(s)://host[:port]/path``
base URL is checked by its text, and any other goes through ``httpx.URL``, whose verdict
is the rule. ``config`` builds a client's whole configuration on top of these.

A setting given but malformed is refused at once; one merely missing (``missing``) is
the caller's to report: a client refuses it when it is made, an app when it is first
used (so that an app module imports in a test without the environment).
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Awaitable, Callable
from typing import Literal, NamedTuple

from .._exceptions import ConfigurationError

__all__ = [
    "DEFAULT_BASE_URL",
    "ApiKey",
    "ApiKeyHeader",
    "Settings",
    "check_given",
    "is_async_function",
    "load_settings",
    "missing",
]

DEFAULT_BASE_URL = "https://emit.run/api/v1"

ApiKey = str | Callable[[], str] | Callable[[], Awaitable[str]]
"""An API key, or a function that returns the current one (called before every request)."""

ApiKeyHeader = Literal["x-api-key", "authorization"]
"""Where the key goes: ``x-api-key: <key>`` or ``Authorization: Bearer <key>``."""


class Settings(NamedTuple):
    """The checked settings (a named tuple: no dataclass to build at import)."""

    space_id: str
    base_url: str
    api_key: ApiKey
    api_key_header: ApiKeyHeader

    def __repr__(self) -> str:  # never the key
        return f"Settings(space_id={self.space_id!r}, base_url={self.base_url!r})"


def load_settings(
    *,
    client: str,
    space_id: str | None,
    api_key: ApiKey | None,
    base_url: str | None,
    api_key_header: str,
    allow_async_key: bool,
) -> Settings:
    """Settings from the arguments, else ``EMIT_SPACE_ID``/``EMIT_API_KEY``/``EMIT_BASE_URL``.

    ``ConfigurationError`` for a missing space or key (``missing``) or a malformed setting.
    """
    space_id = space_id or os.environ.get("EMIT_SPACE_ID") or None
    api_key = api_key or os.environ.get("EMIT_API_KEY") or None
    base_url = base_url or os.environ.get("EMIT_BASE_URL") or DEFAULT_BASE_URL
    if space_id is None or api_key is None:
        raise ConfigurationError(missing(client, space_id, api_key))
    return Settings(
        space_id=_space_id(space_id),
        base_url=_base_url(base_url),
        api_key=_api_key(api_key, client, allow_async_key),
        api_key_header=_key_header(api_key_header),
    )


def missing(client: str, space_id: object, api_key: object) -> str:
    """What is missing, as ``client`` says it (empty: nothing), the environment read for
    what is not given: ``EmitPush needs api_key= (or EMIT_API_KEY)``."""
    needed = [
        f"{arg}= (or {env})"
        for arg, env, value in [
            ("space_id", "EMIT_SPACE_ID", space_id),
            ("api_key", "EMIT_API_KEY", api_key),
        ]
        if not (value or os.environ.get(env))
    ]
    return f"{client} needs {' and '.join(needed)}" if needed else ""


def check_given(
    *,
    client: str,
    space_id: str | None,
    api_key: ApiKey | None,
    base_url: str | None,
    api_key_header: str,
    allow_async_key: bool,
) -> str | None:
    """Check the settings that are set, and none that is not: ``ConfigurationError`` for
    a malformed one. Returns the space id when it is set (else None)."""
    space_id = space_id or os.environ.get("EMIT_SPACE_ID") or None
    api_key = api_key or os.environ.get("EMIT_API_KEY") or None
    _base_url(base_url or os.environ.get("EMIT_BASE_URL") or DEFAULT_BASE_URL)
    _key_header(api_key_header)
    if api_key is not None:
        _api_key(api_key, client, allow_async_key)
    return None if space_id is None else _space_id(space_id)


def _api_key(api_key: ApiKey, client: str, allow_async: bool) -> ApiKey:
    if isinstance(api_key, str):
        if not api_key.strip():
            raise ConfigurationError("api_key is empty")
        return api_key.strip()
    if not callable(api_key):
        raise ConfigurationError(
            f"api_key must be a string or a function, got {type(api_key).__name__}"
        )
    if not allow_async and is_async_function(api_key):
        raise ConfigurationError(f"{client} needs a sync api_key function; use AsyncEmitClient")
    return api_key


def _space_id(value: object) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"space_id must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ConfigurationError("space_id is blank")
    return value.strip()


def _has_userinfo(value: str) -> bool:
    """Whether the URL's authority holds ``user[:password]@``, by its text alone.

    Checked before anything parses the URL, so that no error (nor the parser's, chained
    to ours) can show the credentials, whatever else is wrong with the URL.
    """
    authority = value.split("://", 1)[-1]
    for end in "/?#":
        authority = authority.split(end, 1)[0]
    return "@" in authority


# What httpx.URL takes and prints back unchanged, told without importing httpx (or
# compiling a regex) at a cold start: a lowercase scheme and host, a port without leading
# zeros other than the scheme's default, and a path of characters httpx does not escape
# with no "." or ".." segment for it to remove; no user info, query or fragment.
# tests/test_imports.py holds this to httpx's verdicts.
_HOST = "abcdefghijklmnopqrstuvwxyz0123456789.-"
_PATH = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/"
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _plain_url(value: str) -> bool:
    """Whether httpx would take ``value`` as it is (False: ask httpx)."""
    if len(value) > 2000:  # httpx refuses URLs past a length limit
        return False
    scheme, _, rest = value.partition("://")
    authority, _, path = rest.partition("/")
    host, colon, port = authority.partition(":")
    if scheme not in _DEFAULT_PORTS or not host or host.strip(_HOST) or path.strip(_PATH):
        return False
    octets = host.split(".")  # httpx requires a host of four numbers to be an IPv4 address
    if len(octets) == 4 and all(map(_is_number, octets)) and not all(map(_is_octet, octets)):
        return False
    if colon and not (_is_number(port) and port[0] != "0" and int(port) <= 65535):
        return False
    if port == _DEFAULT_PORTS[scheme]:
        return False
    return not {".", ".."} & set(path.split("/"))


def _is_number(text: str) -> bool:
    return bool(text) and not text.strip("0123456789")  # ASCII digits only, unlike isdigit()


def _is_octet(text: str) -> bool:
    return text == str(int(text)) and int(text) <= 255


def _base_url(value: object) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"base_url must be a string, got {type(value).__name__}")
    if _has_userinfo(value):
        raise ConfigurationError("base_url must not hold credentials (user:pass@); pass api_key=")
    if _plain_url(value):
        return value.rstrip("/")
    import httpx  # an unusual URL: httpx decides, as it will when it sends

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


def is_async_function(func: object) -> bool:
    """Whether calling ``func`` gives a coroutine: an ``async def`` (or a partial of one),
    or an object whose ``__call__`` is one."""
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.iscoroutinefunction(func):
        return True
    return inspect.iscoroutinefunction(type(func).__call__)
