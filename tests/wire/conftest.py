"""Wire fixtures: the SDK's, so that each test of a wire shape runs for both clients.

``kind`` makes every test that uses ``sdk`` (clients against the live server) or
``offline`` (clients with no server) run once per client kind; ``faults`` injects faults
between a client and the live server. See ``tests/sdk/conftest``.
"""

from __future__ import annotations

from tests.sdk.conftest import faults, kind, offline, sdk

__all__ = ["faults", "kind", "offline", "sdk"]
