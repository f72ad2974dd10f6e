"""The local emit server: a faithful, persistent implementation of the emit.run HTTP API.

emit-push server --port 8787          # or, in Python:

from emit_push.server import EmitServer, ServerConfig
async with EmitServer(ServerConfig(db_path=":memory:")) as server:
    ...  # server.app is the ASGI app; server.credentials holds the keys
"""

from __future__ import annotations

from .._extras import requires

with requires("server", "emit_push.server (the local emit server)"):
    import starlette  # noqa: F401  # the server is a Starlette app: its one optional need

from ._app import API_PREFIX, EmitServer, create_app
from ._bootstrap import Credentials
from ._clock import Clock, ManualClock, SystemClock
from ._config import DEFAULT_DB_PATH, KeySpec, Resolver, ServerConfig

__all__ = [
    "API_PREFIX",
    "DEFAULT_DB_PATH",
    "Clock",
    "Credentials",
    "EmitServer",
    "KeySpec",
    "ManualClock",
    "Resolver",
    "ServerConfig",
    "SystemClock",
    "create_app",
]
