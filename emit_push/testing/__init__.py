"""Test your handlers: a recording job, a local emit server in-process, pytest fixtures.

``run_handler`` runs one handler on a payload as a push would run it, with a stand-in for
the service that records every call; no server, no network, no settings::

    from emit_push.testing import run_handler, run_handler_sync

    async def test_resize() -> None:
        recording = await run_handler(app, "resize", {"url": "s3://a", "width": 64})
        assert recording.status == "completed"
        assert recording.result == {"thumbnail": "s3://a?w=64"}

    def test_resize_sync() -> None:  # the same, in a plain test
        recording = run_handler_sync(app, "resize", {"url": "s3://a", "width": 64})
        assert recording.job_id == "test-job"

``LocalEmit`` is the local emit server in-process (needs ``emit-push[server]``), and
``LocalEmit.push`` sends an app the push emit.run would send; ``SyncLocalEmit`` has the
same methods for sync code. Installing emit-push registers its pytest plugin (the
``pytest11`` entry point ``emit_push.testing.pytest_plugin``): the ``emit_local``,
``emit_client`` and ``emit_local_sync`` fixtures need no ``conftest.py``::

    async def test_resize_end_to_end(emit_local: LocalEmit) -> None:
        outcome = await emit_local.push(app, "resize", {"url": "s3://a", "width": 64})
        assert outcome.job.status == "completed"

This module imports without pytest, and without the server's dependencies (``LocalEmit``
loads them on first use, and a ``MissingExtraError`` names the extra when they are
missing): ``run_handler`` needs neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._recording import Recording, run_handler, run_handler_sync
from ._service import KillAfter, ProgressReport, RecordedCall

if TYPE_CHECKING:
    from ._local import LocalEmit, PushOutcome
    from ._local_sync import SyncLocalEmit

__all__ = [
    "KillAfter",
    "LocalEmit",
    "ProgressReport",
    "PushOutcome",
    "RecordedCall",
    "Recording",
    "SyncLocalEmit",
    "run_handler",
    "run_handler_sync",
]


def __getattr__(name: str) -> Any:
    if name in ("LocalEmit", "PushOutcome"):
        from . import _local

        return getattr(_local, name)
    if name == "SyncLocalEmit":
        from ._local_sync import SyncLocalEmit

        return SyncLocalEmit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
