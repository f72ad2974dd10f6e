"""Test your handlers: a recording job, a local emit server in-process, pytest fixtures.

``run_handler`` runs one handler on a payload as a push would run it, with a stand-in for
the service that records every call; no server, no network::

    from emit_push.testing import run_handler

    async def test_resize() -> None:
        recording = await run_handler(app, "resize", {"url": "s3://a", "width": 64})
        assert recording.status == "completed"
        assert recording.result == {"thumbnail": "s3://a?w=64"}

``LocalEmit`` is the local emit server in-process (needs ``emit-push[server]``), and
``LocalEmit.push`` sends an app the push emit.run would send. With pytest, add
``pytest_plugins = ["emit_push.testing.pytest_plugin"]`` to the top-level ``conftest.py``
for the ``emit_local`` and ``emit_client`` fixtures::

    async def test_resize_end_to_end(emit_local: LocalEmit) -> None:
        outcome = await emit_local.push(app, "resize", {"url": "s3://a", "width": 64})
        assert outcome.job.status == "completed"

This module imports without pytest, and without the server's dependencies (``LocalEmit``
loads them on first use): ``run_handler`` needs neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._recording import Recording, run_handler
from ._service import KillAfter, ProgressReport, RecordedCall

if TYPE_CHECKING:
    from ._local import LocalEmit, PushOutcome

__all__ = [
    "KillAfter",
    "LocalEmit",
    "ProgressReport",
    "PushOutcome",
    "RecordedCall",
    "Recording",
    "run_handler",
]


def __getattr__(name: str) -> Any:
    if name in ("LocalEmit", "PushOutcome"):
        from . import _local

        return getattr(_local, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
