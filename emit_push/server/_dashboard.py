"""The local dashboard: a page of the local server that steers it through the public API.

``/dashboard/`` serves ``dashboard/index.html`` and ``/dashboard/static/*`` its CSS and
JavaScript modules, all package data: no CDN, no build step, nothing fetched from outside.
The page calls the same API as the SDK (``/api/v1`` and its WebSocket streams, plus the
local-server calls of ``_local_api``); it has no private endpoints.

**Its key.** The page needs a key for the default space. The server makes one for it:
``emit_dash_...``, scopes ``jobs:create jobs:read jobs:kill space:admin`` (no worker
scopes), held in memory only (never stored, never printed), new for each run of the
server, so a restart retires it. The page gets it inside its HTML, and only when the
request is local on both ends and names a loopback host: the client and the address it
reached are loopback, and the ``Host`` header is ``localhost``, ``*.localhost`` or a
loopback address. (A DNS-rebinding page reaches 127.0.0.1 under its own name, so its
``Host`` gives it away.) Otherwise (a server bound to a public address, reached from
elsewhere) the page asks for a key, keeps it in the tab's session storage, and never puts
it in a URL. The HTML is sent ``no-store`` with a strict Content-Security-Policy
(scripts, styles and connections to this origin only, no framing).

``/`` redirects browsers (``Accept: text/html``) here; API clients still get JSON.
``/docs`` redirects to the OpenAPI document.
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import json
import secrets
from dataclasses import dataclass
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ._auth import Keyring
from ._ids import format_ts
from ._local_api import KeyInfo, LocalApi, LocalServices, mask_key
from ._scopes import ADMIN, expand

__all__ = ["DASHBOARD_PATH", "DASHBOARD_SCOPES", "Dashboard", "wants_html"]

DASHBOARD_PATH = "/dashboard/"
DASHBOARD_SCOPES = ("jobs:create", "jobs:read", "jobs:kill", ADMIN)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
_CONFIG_MARK = "__EMIT_CONFIG__"
_GZIP_FROM = 1024  # bytes: smaller files go as they are


def wants_html(request: Request) -> bool:
    """A browser's navigation (it asks for HTML); API clients ask for JSON or anything."""
    return "text/html" in request.headers.get("accept", "")


@dataclass(frozen=True)
class _Asset:
    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str


def _load_assets() -> dict[str, _Asset]:
    """Every file under ``dashboard/``, by its path there (``index.html``, ``static/x.js``)."""
    assets: dict[str, _Asset] = {}
    root = resources.files(__package__ or "emit_push.server") / "dashboard"
    folders = [("", root)]
    while folders:
        prefix, folder = folders.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                folders.append((f"{prefix}{entry.name}/", entry))
                continue
            suffix = "." + entry.name.rpartition(".")[2]
            if suffix not in _TYPES:
                continue
            body = entry.read_bytes()
            packed = gzip.compress(body, 9, mtime=0) if len(body) >= _GZIP_FROM else None
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            assets[prefix + entry.name] = _Asset(body, packed, _TYPES[suffix], etag)
    return assets


class Dashboard:
    """The dashboard's routes and its in-memory key (module docstring)."""

    def __init__(self, server: LocalServices, api_prefix: str) -> None:
        self._s = server
        self._api_prefix = api_prefix
        self._assets: dict[str, _Asset] | None = None
        self._key: str | None = None
        self._keyring: Keyring | None = None
        self._key_made = 0

    @property
    def assets(self) -> dict[str, _Asset]:
        if self._assets is None:
            self._assets = _load_assets()
        return self._assets

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/dashboard", self._to_page, methods=["GET"]),
            Route(DASHBOARD_PATH, self.page, methods=["GET"]),
            Route("/dashboard/static/{name:path}", self.static, methods=["GET"]),
            Route("/docs", self._to_openapi, methods=["GET"]),
            *LocalApi(self._s, self.memory_keys).routes(self._api_prefix),
        ]

    def redirect(self, request: Request) -> Response:
        """To the page, for a browser that asked for ``/``."""
        return RedirectResponse(request.scope.get("root_path", "") + DASHBOARD_PATH, 307)

    async def _to_page(self, request: Request) -> Response:
        return self.redirect(request)

    async def _to_openapi(self, request: Request) -> Response:
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}{self._api_prefix}/openapi.json", 307)

    # -- the key -------------------------------------------------------------------

    def key(self) -> str:
        """The page's key for this run of the server (made on first use, in memory)."""
        keyring = self._s.keyring
        if self._key is None or self._keyring is not keyring:  # first use, or restarted
            self._key = "emit_dash_" + secrets.token_urlsafe(30)
            self._keyring = keyring
            self._key_made = self._s.config.clock.now_ms()
            space_id = self._s.credentials.space_id
            keyring.add(self._key, "dashboard", space_id, expand(DASHBOARD_SCOPES))
        return self._key

    def memory_keys(self, space_id: str) -> list[KeyInfo]:
        """The dashboard's key, as ``GET /spaces/:id`` lists keys, once it exists."""
        if self._key is None or self._keyring is not self._s.keyring:
            return []
        if space_id != self._s.credentials.space_id:
            return []
        return [
            {
                "name": "dashboard",
                "key": mask_key(self._key),
                "scopes": list(DASHBOARD_SCOPES),
                "createdAt": format_ts(self._key_made),
                "inMemory": True,
            }
        ]

    # -- the page ------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        local = _local(request)
        root = request.scope.get("root_path", "")
        config: dict[str, Any] = {
            "spaceId": self._s.credentials.space_id,
            "apiBase": root + self._api_prefix,
            "key": self.key() if local else None,
            "keyScopes": list(DASHBOARD_SCOPES),
        }
        # Inside <script type="application/json">: no "<" may close the element early.
        text = json.dumps(config).replace("<", "\\u003c").replace(">", "\\u003e")
        html = self.assets["index.html"].body.decode().replace(_CONFIG_MARK, text)
        return Response(html, media_type=_TYPES[".html"], headers=_page_headers(request))

    async def static(self, request: Request) -> Response:
        asset = self.assets.get("static/" + request.path_params["name"])
        if asset is None:
            return Response("Not found", status_code=404, media_type="text/plain")
        headers = {
            "ETag": asset.etag,
            "Cache-Control": "no-cache",  # revalidated: names carry no content hash
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
        }
        if asset.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        body = asset.body
        if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
            body = asset.gzipped
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=asset.media_type, headers=headers)


def _page_headers(request: Request) -> dict[str, str]:
    scheme = "wss" if request.url.scheme in {"https", "wss"} else "ws"
    origin = request.headers.get("host", "")
    connect = "'self'" + (f" {scheme}://{origin}" if _safe_host(origin) else "")
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        f" connect-src {connect}; base-uri 'none'; form-action 'none';"
        " frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "Cache-Control": "no-store",  # the page may hold a key
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
    }


def _safe_host(value: str) -> bool:
    return bool(value) and all(c.isalnum() or c in ".-_:[]" for c in value)


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The name of a ``Host`` header, without port or brackets, lower case."""
    if header.startswith("["):
        return header[1:].partition("]")[0].lower()
    return header.rpartition(":")[0].lower() if header.count(":") == 1 else header.lower()


def _local(request: Request) -> bool:
    """Whether the page may be handed the key: loopback on both ends, a loopback Host."""
    client, server = request.scope.get("client"), request.scope.get("server")
    if not client or not server or not _loopback(client[0]) or not _loopback(server[0]):
        return False
    name = _host_name(request.headers.get("host", ""))
    return name == "localhost" or name.endswith(".localhost") or _loopback(name)
