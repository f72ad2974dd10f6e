"""What the HTTP and WebSocket endpoints use of a running server: the ``Services`` protocol.

``EmitServer`` is one. The endpoints are made with the app, before the server starts, and
the server makes these parts when it starts (anew after a stop): so the endpoints hold the
server as ``Services`` and read its parts on every request, instead of holding the parts.
"""

from __future__ import annotations

from typing import Protocol

from ._auth import Keyring
from ._config import ServerConfig
from ._engine import Engine
from ._hub import Hub
from ._queries import Reader
from ._store import Store

__all__ = ["Services"]


class Services(Protocol):
    @property
    def config(self) -> ServerConfig: ...

    @property
    def store(self) -> Store: ...

    @property
    def keyring(self) -> Keyring: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def reader(self) -> Reader: ...

    @property
    def hub(self) -> Hub: ...
