"""Tests of examples/sentry_middleware.py: the real Sentry SDK, its envelopes kept in memory.

Sentry is started with a transport that keeps what it would send (the DSN names a
loopback address that nothing is sent to) and without its default integrations, which
would patch the standard library for the rest of the test session.

    pytest examples/test_sentry_middleware.py
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from emit_push.testing import run_handler

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # emit-push runs on asyncio


class Kept(Transport):
    """Keeps each envelope's items, by type (``event``, ``transaction``)."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[str, dict[str, Any]]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        for item in envelope.items:
            if item.type in ("event", "transaction") and item.payload.json is not None:
                self.items.append((item.type, item.payload.json))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [payload for type_, payload in self.items if type_ == kind]


@pytest.fixture
def sentry() -> Iterator[Kept]:
    kept = Kept()
    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1",
        transport=kept,
        traces_sample_rate=1.0,
        default_integrations=False,
        auto_enabling_integrations=False,
    )
    yield kept
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


@pytest.fixture(scope="module")
def example() -> ModuleType:
    return importlib.import_module("examples.sentry_middleware")


async def test_a_failed_run_is_reported_with_the_job_and_still_fails_the_job(
    example: ModuleType, sentry: Kept
) -> None:
    recording = await run_handler(example.app, "charge", {"customer": "c1", "cents": 0})
    assert (recording.status, recording.error) == ("failed", "ValueError: cannot charge 0 cents")
    job_id = recording.push_result.job_id

    [event] = sentry.of("event")
    [exception] = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("ValueError", "cannot charge 0 cents")
    assert event["tags"]["emit.job.name"] == "charge"
    assert event["contexts"]["emit.job"] == {"id": job_id, "attempt": 0}
    [transaction] = sentry.of("transaction")
    assert transaction["transaction"] == "process charge"
    [span] = transaction["spans"]
    assert span["op"] == "queue.process"
    assert span["data"]["messaging.message.id"] == job_id
    assert span["data"]["messaging.destination.name"] == "charge"
    assert span["data"]["messaging.message.retry.count"] == 0
    assert event["contexts"]["trace"]["trace_id"] == transaction["contexts"]["trace"]["trace_id"]
    assert transaction["contexts"]["trace"]["status"] == "internal_error"


async def test_a_completed_run_is_a_transaction_and_no_error(
    example: ModuleType, sentry: Kept
) -> None:
    recording = await run_handler(example.app, "charge", {"customer": "c1", "cents": 250})
    assert (recording.status, recording.result) == ("completed", {"receipt": "r-c1"})
    assert sentry.of("event") == []
    [transaction] = sentry.of("transaction")
    assert transaction["transaction"] == "process charge"
    assert transaction["tags"]["emit.job.name"] == "charge"


async def test_one_runs_tags_stay_with_that_run(example: ModuleType, sentry: Kept) -> None:
    await run_handler(example.app, "charge", {"customer": "c1", "cents": 0})
    sentry_sdk.capture_message("outside any run")
    outside = sentry.of("event")[-1]
    assert "emit.job.name" not in outside.get("tags", {})
    assert "emit.job" not in outside.get("contexts", {})
