"""The hub: fans committed events out, in memory, to the subscribers of a job or a space.

The engine's events reach it after their transaction commits, in commit order. Each space's
events are numbered with a ``seq`` that lives as long as this hub (``instance_id``, the
streams' ``streamInstanceId``). A subscriber's queue is bounded: one that overflows gets
:data:`CLOSED` and nothing more, and its stream tells the client to reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from ._ids import new_ulid
from ._wire import Event

__all__ = ["CLOSED", "Hub", "Subscriber"]

CLOSED = object()  # queued when a subscriber must stop: client gone or queue overflowed


class Subscriber:
    def __init__(self, limit: int) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.limit = limit
        self.overflowed = False

    def put(self, item: Any) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() >= self.limit:
            self.overflowed = True
            item = CLOSED
        self.queue.put_nowait(item)


class Hub:
    """Fans events out to the subscribers of a job and of a space."""

    def __init__(self, queue_limit: int = 10_000) -> None:
        self.instance_id = new_ulid()
        self._seq: dict[str, int] = {}
        self._jobs: dict[str, set[Subscriber]] = {}
        self._spaces: dict[str, set[Subscriber]] = {}
        self._limit = queue_limit

    def seq(self, space_id: str) -> int:
        return self._seq.get(space_id, 0)

    def subscribers(self, kind: Literal["job", "space"], key: str) -> int:
        """How many streams follow this job or space now."""
        return len((self._jobs if kind == "job" else self._spaces).get(key, ()))

    def publish(self, events: Sequence[Event]) -> None:
        for event in events:
            seq = self._seq[event.space_id] = self._seq.get(event.space_id, 0) + 1
            for sub in self._jobs.get(event.job_id, ()):
                sub.put(event)
            for sub in self._spaces.get(event.space_id, ()):
                sub.put((seq, event))

    @contextlib.contextmanager
    def subscribe(self, kind: Literal["job", "space"], key: str) -> Iterator[Subscriber]:
        """Receive the events of one job, or of a whole space, while the block runs."""
        table = self._jobs if kind == "job" else self._spaces
        sub = Subscriber(self._limit)
        table.setdefault(key, set()).add(sub)
        try:
            yield sub
        finally:
            subscribers = table[key]
            subscribers.discard(sub)
            if not subscribers:
                del table[key]
