"""Delivering a log batch exactly once, in practice: the rule for lost answers. No I/O.

``POST /jobs/:id/logs`` stores its lines every time it is received, so a batch whose
answer was lost (a dropped connection, a read timeout, a 502 from a gateway after the
service had stored it) must not simply be sent again. The rule:

1. A batch is sent. The call itself is retried only on failures that prove the service
   did not process it (connection refused, 429, 503); see ``_wire.retry``.
2. On any other failure the batch is *in doubt*, and the job's logs are read back:
   ``GET /jobs/:id/logs?after=<cursor>``, where the cursor is the ``lastSeq`` of the last
   batch the service acknowledged (batches go out one at a time, so this one, if stored,
   comes right after it). If the next lines there are this batch's (same count, same
   levels and messages, in order), the batch counts as sent and the cursor moves on.
3. Before any batch was acknowledged (no cursor), the position is not pinned: the log is
   searched for the batch's lines, and their timestamps must match too, so that lines
   of an earlier attempt of the job cannot pass for this batch.
4. If the lines are not there, the batch is sent again at once (the read-back proved the
   service reachable). If the read-back fails too, the batch is kept whole, still in
   doubt, and the next try (after the shipper's backoff) starts by reading back again.
   If the read-back is refused for good (a key without ``jobs:read``), the batch is sent
   again: a line stored twice is better than a line lost.

What remains: a batch that timed out while the service was still working on it, and is
stored only after the read-back looked, is stored twice. That takes a service slower
than the client's timeout and a read that overtakes the write; it is the price of never
losing a batch to a lost answer.

Each function here is a generator in the manner of ``_sdk.transport.call_flow``: it yields
the ``Call`` to run and is sent the answer, or thrown the ``EmitError`` the call raised.
The shippers (``shipping``) drive it with the job's runner, sync or async.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Generator
from typing import Any

from .._exceptions import EmitError
from .._wire import endpoints as ep
from .._wire.endpoints import Call
from .._wire.models import LogEntry, LogsAccepted, format_timestamp
from .._wire.retry import unprocessed
from .batch import Batch

__all__ = ["Delivery", "LogCursor", "deliver"]

Delivery = Generator[Call[Any], Any, LogsAccepted]

_PAGE = 1000  # the most lines one read returns (the contract's maximum)
log = logging.getLogger("emit_push")


class LogCursor:
    """Where a job's acknowledged lines end: the ``lastSeq`` of its last stored batch."""

    __slots__ = ("last_seq",)

    def __init__(self) -> None:
        self.last_seq: int | None = None
        """None until a batch is acknowledged, or when the service does not say."""


def deliver(job_id: str, batch: Batch, cursor: LogCursor, *, gzip: bool) -> Delivery:
    """Send ``batch`` once, settling a lost answer by reading the logs back."""
    if batch.in_doubt:
        found = yield from _look(job_id, batch, cursor, None)
        if found is not None:
            return found
    resent = False
    while True:
        try:
            accepted: LogsAccepted = yield ep.append_logs(job_id, batch.encode(), gzip=gzip)
        except EmitError as error:
            if not error.retryable or unprocessed(error):
                raise  # refused, or provably not stored: nothing is in doubt
            batch.in_doubt = True
            if resent:
                raise
            found = yield from _look(job_id, batch, cursor, error)
            if found is not None:
                log.info("log batch of %s had landed; its answer was lost: %s", job_id, error)
                return found
            log.info("log batch of %s did not land (%s); sending it again", job_id, error)
            resent = True
            continue
        # A runner may answer something else (a test double): then the cursor is unknown.
        cursor.last_seq = accepted.last_seq if isinstance(accepted, LogsAccepted) else None
        return accepted


def _look(
    job_id: str, batch: Batch, cursor: LogCursor, error: EmitError | None
) -> Generator[Call[Any], Any, LogsAccepted | None]:
    """Settle the doubt: the batch as stored, or None (no doubt left: send it)."""
    try:
        found = yield from _find(job_id, batch, cursor)
    except EmitError as failed:
        if failed.retryable:  # cannot tell now: keep the batch, and the doubt
            raise (error or failed) from None
        # Cannot tell ever (e.g. a key without jobs:read): a duplicate beats a loss.
        log.warning(
            "cannot read back the logs of %s (%s): sending a batch that may be stored already",
            job_id, failed,
        )  # fmt: skip
        found = None
    batch.in_doubt = False
    return found


def _find(
    job_id: str, batch: Batch, cursor: LogCursor
) -> Generator[Call[Any], Any, LogsAccepted | None]:
    """The batch as stored (the cursor moves past it), or None when its lines are not there."""
    expected = [(line["level"], line["message"], line["ts"]) for line in batch.decoded()]
    count = len(expected)
    pinned = cursor.last_seq is not None
    after = cursor.last_seq
    window: deque[LogEntry] = deque(maxlen=count)
    while True:
        limit = min(count - len(window), _PAGE) if pinned else _PAGE
        page = yield ep.logs(job_id, after=after, limit=limit)
        for entry in page.logs:
            window.append(entry)
            if len(window) == count and _same(window, expected, timestamps=not pinned):
                found = LogsAccepted(
                    accepted=count, first_seq=window[0].seq, last_seq=window[-1].seq
                )
                cursor.last_seq = found.last_seq
                return found
            if pinned and len(window) == count:
                return None  # the lines right after the cursor are someone else's
        if page.next_cursor is None or not page.logs:
            return None
        after = page.next_cursor


def _same(
    stored: deque[LogEntry], expected: list[tuple[str, str, str]], *, timestamps: bool
) -> bool:
    for entry, (level, message, ts) in zip(stored, expected, strict=True):
        if entry.level != level or entry.message != message:
            return False
        if timestamps and (entry.ts is None or format_timestamp(entry.ts) != ts):
            return False
    return True
