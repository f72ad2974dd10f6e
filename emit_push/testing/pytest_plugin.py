"""The pytest fixtures ``emit_local``, ``emit_client`` and ``emit_local_sync``.

Installing emit-push registers this module with pytest (the ``pytest11`` entry point
named ``emit_push.testing.pytest_plugin``, after the module): no ``conftest.py`` is
needed. Naming the entry point after the module keeps ``pytest_plugins =
["emit_push.testing.pytest_plugin"]`` (needed only with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``)
working alongside it, as pytest registers a plugin once under each name. ``-p
no:emit_push.testing.pytest_plugin`` turns it off.

A module of its own, which nothing else imports, so that pytest can register it whatever
the test modules imported before (``emit_push.testing`` itself does not need pytest).
``emit_local`` is an async fixture: pytest runs it with the plugin that runs the async
tests. anyio's (installed with emit-push) does when the test is marked
``@pytest.mark.anyio`` or ``anyio_mode = "auto"`` is set, with ``anyio_backend``
``"asyncio"``; pytest-asyncio does in ``asyncio_mode = "auto"``. ``emit_local_sync``
is for plain ``def`` tests and needs neither.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

from .._client import AsyncEmitClient

if TYPE_CHECKING:
    from ._local import LocalEmit
    from ._local_sync import SyncLocalEmit

__all__ = ["emit_client", "emit_local", "emit_local_sync"]


@pytest.fixture
async def emit_local() -> AsyncIterator[LocalEmit]:
    """The local emit server in-process (``LocalEmit``), started for one test.

    async def test_resize(emit_local: LocalEmit) -> None:
        outcome = await emit_local.push(app, "resize", {"url": "s3://a", "width": 64})
        assert outcome.status == "completed"
    """
    from ._local import LocalEmit  # the server's code loads only for tests that use it

    async with LocalEmit() as local:
        yield local


@pytest.fixture
def emit_client(emit_local: LocalEmit) -> AsyncEmitClient:
    """An ``AsyncEmitClient`` bound to ``emit_local``, with every scope."""
    return emit_local.client()


@pytest.fixture
def emit_local_sync() -> Iterator[SyncLocalEmit]:
    """The local emit server in-process for a plain ``def`` test (``SyncLocalEmit``).

    def test_resize(emit_local_sync: SyncLocalEmit) -> None:
        outcome = emit_local_sync.push(app, "resize", {"url": "s3://a", "width": 64})
        assert outcome.status == "completed"
    """
    from ._local_sync import SyncLocalEmit

    with SyncLocalEmit() as local:
        yield local
