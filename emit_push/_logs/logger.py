"""The batched job logger: ``job.log.info(...)`` appends to a buffer and returns at once.

A shipper (``shipping``) sends what is buffered as NDJSON to ``POST /jobs/:id/logs``: as
soon as ``max_batch_size`` entries wait, every ``flush_interval`` seconds, and when the
job is closed. Batches go out one at a time, in order. A batch the service provably did
not receive goes back to the front of the buffer; one whose answer was lost is kept whole
until a read-back tells whether it was stored (``delivery``), so no batch is stored
twice. After a failed send the shipper waits (``flush_interval``, the service's
``Retry-After``, and a backoff growing to 30 s) before it tries again.

When more than ``max_buffered_entries`` wait (the service is down, or the job logs faster
than it can be sent), the oldest are dropped, counted, and reported in the next batch: it
starts with a ``warn`` line from source ``emit-push`` saying how many were dropped, with
``metadata={"droppedEntries": n}``. Entries are lost only that way, or when the service
refuses an entry outright (a batch refused as too large, or as invalid at a line it
names, is split in halves until the entries it can take are stored and the one it
cannot is found), or
is still unreachable when the job is closed (or the
program exits, or its event loop ends, with the job still open); every loss is counted
(``job.log.lost``) and reported through the ``emit_push`` Python logger.

This module is the sans-I/O part: the options and the buffer (``batch`` encodes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._exceptions import APIError, ConfigurationError, EmitError
from .batch import Batch, Entry

__all__ = ["OWN_SOURCE", "START", "WAKE", "Batch", "JobLogger", "LogBuffer", "LoggerOptions"]

OWN_SOURCE = "emit-push"
"""The ``source`` of the lines emit-push writes itself (reported separately to ``logging``)."""

START = 1  # the buffer was idle: start a shipper
WAKE = 2  # a full batch waits: send it now

log = logging.getLogger("emit_push")


@dataclass(frozen=True, slots=True)
class LoggerOptions:
    """How ``job.log`` batches and ships its entries.

    LoggerOptions(flush_interval=0.5, gzip=False, source="resizer")
    """

    flush_interval: float = 1.0
    """Seconds between sends while entries wait."""
    max_batch_size: int = 100
    """Entries per request; reaching it sends at once."""
    max_buffered_entries: int = 10_000
    """Past this many waiting entries the oldest are dropped (and counted)."""
    gzip: bool = True
    """Send batches with ``Content-Encoding: gzip``."""
    source: str | None = None
    """Default ``source`` of every entry."""
    echo_level: int | None = logging.INFO
    """Lines at or above this ``logging`` level are also records of the ``emit_push.job``
    logger, with the job's id, name and attempt; None: never (see ``bridge``)."""
    capture_level: int | None = logging.INFO
    """``logging`` records at or above this level, made while the job's function runs,
    are appended to the job's logs; None: never (see ``bridge``)."""

    def __post_init__(self) -> None:
        if not self.flush_interval > 0:
            raise ConfigurationError("LoggerOptions.flush_interval must be > 0")
        if not 1 <= self.max_batch_size <= 5000:
            raise ConfigurationError("LoggerOptions.max_batch_size must be in 1..5000")
        if self.max_buffered_entries < self.max_batch_size:
            raise ConfigurationError("LoggerOptions.max_buffered_entries must be >= max_batch_size")


class LogBuffer:
    """Waiting entries and the logger's counters; safe to use from any thread.

    Besides the waiting entries, the buffer knows the batch being sent (``take`` to
    ``settle``) and a batch held back whole because its fate is unknown: that one goes out
    (or is looked for) first, and the cap does not cut into it.
    """

    def __init__(self, options: LoggerOptions) -> None:
        self._entries: deque[Entry] = deque()
        self._lock = threading.Lock()
        self._cap = options.max_buffered_entries
        self._batch = options.max_batch_size
        self._unreported = 0  # dropped, not yet reported in a batch
        self._active = False  # a shipper is on duty
        self._held: Batch | None = None  # in doubt: sent, answer lost
        self._halves: deque[Batch] = deque()  # of a batch refused whole: sent before the rest
        self._sending: Batch | None = None
        self.dropped = 0
        self.sent = 0
        self.lost = 0

    def __len__(self) -> int:
        held = self._held
        halves = sum(len(half.entries) for half in self._halves)
        return len(self._entries) + halves + (len(held.entries) if held is not None else 0)

    def unsent(self) -> int:
        """Entries not yet acknowledged: waiting, held, or being sent."""
        sending = self._sending
        return len(self) + (len(sending.entries) if sending is not None else 0)

    def add(self, entry: Entry) -> int:
        """Buffer ``entry``; returns START, WAKE or 0 for the shipper."""
        with self._lock:
            entries = self._entries
            full = len(entries) >= self._cap
            if full:
                entries.popleft()
                self._unreported += 1
                self.dropped += 1
            entries.append(entry)
            if not self._active:
                self._active = True
                return START
            # Full, the buffer stays at the cap: the shipper was woken as it filled up, and
            # waking it again for every entry would only cost (it may be backing off).
            return WAKE if not full and len(entries) % self._batch == 0 else 0

    def take(self) -> Batch | None:
        """The next batch to send, oldest entries first; None when nothing waits."""
        with self._lock:
            if self._held is not None:
                batch, self._held = self._held, None
            elif self._halves:
                batch = self._halves.popleft()
            else:
                entries = self._entries
                if not entries and not self._unreported:
                    return None
                taken = [entries.popleft() for _ in range(min(self._batch, len(entries)))]
                dropped, self._unreported = self._unreported, 0
                batch = Batch(taken, dropped, self._cap)
            self._sending = batch
            return batch

    def settle(self, batch: Batch, error: BaseException | None) -> bool:
        """Record how sending ``batch`` went; False when it was put back (stop for now)."""
        self._sending = None
        if error is None:
            self.sent += len(batch.entries)
            return True
        if isinstance(error, EmitError) and error.retryable:
            self.restore(batch)
            log.debug("log batch not sent, will retry: %s", error)
            return False
        if _refused_whole(error) and len(batch.entries) > 1:
            # One entry may spoil the lot (too large, or a field the service limits):
            # the halves go first, until the others are stored and that one is found.
            middle = len(batch.entries) // 2
            first = Batch(batch.entries[:middle], batch.dropped, batch.cap, half=True)
            second = Batch(batch.entries[middle:], 0, batch.cap, half=True)
            with self._lock:
                self._halves.extendleft((second, first))
            return True
        self.lost += len(batch.entries)
        log.warning("lost %d log entries: %s", len(batch.entries), error)
        return True

    def restore(self, batch: Batch) -> None:
        """Put ``batch`` back: whole when in doubt, else in front, dropping past the cap."""
        with self._lock:
            self._sending = None
            if batch.in_doubt:
                self._held = batch
                return
            if batch.half:  # in front of the other halves: the lines keep their order
                self._halves.appendleft(batch)
                return
            self._entries.extendleft(reversed(batch.entries))
            self._unreported += batch.dropped
            while len(self._entries) > self._cap:
                self._entries.popleft()
                self._unreported += 1
                self.dropped += 1

    def abandon(
        self, why: str | None = "the service was unreachable at close", *, sending: bool = False
    ) -> int:
        """Give up on what waits (and what is being sent, if told); returns how many.

        The loss is counted, and reported as a warning unless ``why`` is None.
        """
        with self._lock:
            count = len(self)
            if sending and self._sending is not None:
                count += len(self._sending.entries)
                self._sending.entries = []  # settled later, it counts for nothing
            self._entries.clear()
            self._halves.clear()
            self._held = None
            self._unreported = 0
        if count:
            self.lost += count
            if why is not None:
                log.warning("lost %d log entries: %s", count, why)
        return count

    def retire(self) -> bool:
        """Called by a shipper with nothing left to do: True (and idle) when nothing waits."""
        with self._lock:
            if self._entries or self._halves or self._unreported or self._held is not None:
                return False
            self._active = False
            return True

    def deactivate(self) -> None:
        """No shipper could be started: let the next entry try again."""
        with self._lock:
            self._active = False


def _refused_whole(error: BaseException) -> bool:
    """Whether the service refused a batch for some entry in it: too large (413), or
    invalid with a line named (400). A 400 for the batch as a whole would be refused
    again in any part: splitting it would only multiply the requests."""
    if not isinstance(error, APIError):
        return False
    return error.status == 413 or (error.status == 400 and "line" in error.message.lower())


class JobLogger:
    """``job.log``: structured log lines for the job, batched and sent in the background.

    Every method returns at once and never raises; see ``LoggerOptions``.

        job.log.info("resized", metadata={"width": 640}, source="resizer")
    """

    __slots__ = ("_buffer", "_echo", "_notify", "_source")

    def __init__(
        self,
        buffer: LogBuffer,
        notify: Callable[[int], None],
        source: str | None = None,
        echo: Callable[[str, str, Any], None] | None = None,
    ) -> None:
        self._buffer = buffer
        self._notify = notify
        self._source = source
        self._echo = echo

    def _add(
        self, level: str, message: str, metadata: Any, source: str | None, echo: bool = True
    ) -> None:
        try:
            if type(metadata) is dict:
                metadata = metadata.copy()  # later changes by the caller must not show
            signal = self._buffer.add(
                (time.time(), level, message, metadata, source or self._source)
            )
            if signal:
                self._notify(signal)
            if echo and self._echo is not None and source != OWN_SOURCE:
                self._echo(level, message, metadata)
        except Exception:  # never into user code
            log.debug("job.log failed", exc_info=True)

    def trace(
        self, message: str, metadata: Mapping[str, Any] | None = None, source: str | None = None
    ) -> None:
        """Log at ``trace``."""
        self._add("trace", message, metadata, source)

    def debug(
        self, message: str, metadata: Mapping[str, Any] | None = None, source: str | None = None
    ) -> None:
        """Log at ``debug``."""
        self._add("debug", message, metadata, source)

    def info(
        self, message: str, metadata: Mapping[str, Any] | None = None, source: str | None = None
    ) -> None:
        """Log at ``info``."""
        self._add("info", message, metadata, source)

    def warn(
        self, message: str, metadata: Mapping[str, Any] | None = None, source: str | None = None
    ) -> None:
        """Log at ``warn`` (also spelled ``warning``)."""
        self._add("warn", message, metadata, source)

    warning = warn

    def error(
        self, message: str, metadata: Mapping[str, Any] | None = None, source: str | None = None
    ) -> None:
        """Log at ``error``."""
        self._add("error", message, metadata, source)

    def fatal(
        self, message: str, metadata: Mapping[str, Any] | None = None, source: str | None = None
    ) -> None:
        """Log at ``fatal``."""
        self._add("fatal", message, metadata, source)

    @property
    def buffered(self) -> int:
        """Entries waiting to be sent."""
        return len(self._buffer)

    @property
    def sent(self) -> int:
        """Entries the service accepted."""
        return self._buffer.sent

    @property
    def dropped(self) -> int:
        """Entries dropped because more than ``max_buffered_entries`` waited."""
        return self._buffer.dropped

    @property
    def lost(self) -> int:
        """Entries given up on: refused by the service, or unsendable at close."""
        return self._buffer.lost
