"""Realtime fixtures: the SDK's, so that each stream test runs for both clients.

``kind`` makes every test that uses ``sdk`` (clients against the live server) or
``offline`` (clients with no server) run once per client kind; see ``tests/sdk/conftest``.
"""

from __future__ import annotations

from tests.sdk.conftest import kind, offline, sdk

__all__ = ["kind", "offline", "sdk"]
