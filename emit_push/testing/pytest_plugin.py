"""The pytest fixtures ``emit_local`` and ``emit_client``; enable them in the top-level
``conftest.py`` (or in a test module)::

    pytest_plugins = ["emit_push.testing.pytest_plugin"]

A module of its own, which nothing else imports, so that pytest can register it whatever
the test modules imported before (``emit_push.testing`` itself does not need pytest).
``emit_local`` is an async fixture: pytest runs it with the plugin that runs the async
tests. anyio's (installed with emit-push) does when the test is marked
``@pytest.mark.anyio`` or ``anyio_mode = "auto"`` is set, with ``anyio_backend``
``"asyncio"``; pytest-asyncio does in ``asyncio_mode = "auto"``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from .._client import AsyncEmitClient

if TYPE_CHECKING:
    from ._local import LocalEmit

__all__ = ["emit_client", "emit_local"]


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
