"""Warnings about refused pushes and an unreachable service, at most one a minute per kind.

A push endpoint open to the internet can be sent a flood of bad pushes (a scanner, a
wrong secret in the space's settings): each refusal is worth one line with its fix, not
one line per request. :class:`Notices` lets the first of a kind through, holds back the
rest for ``every`` seconds, and says how many it held back with the next one it lets
through.

    notices.warn("secret", "push refused: %s. Fix: ...", why)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["Notices", "push_log"]

push_log = logging.getLogger("emit_push.push")


class Notices:
    """Rate-limited warnings on the ``emit_push.push`` logger, by kind."""

    def __init__(
        self,
        every: float = 60.0,
        logger: logging.Logger = push_log,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every = every
        self.logger = logger
        self._clock = clock
        self._next: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def warn(self, kind: str, message: str, *args: object) -> bool:
        """Log ``message % args`` at WARNING unless one of ``kind`` went out in the last
        ``every`` seconds; returns whether it went out."""
        if not self.logger.isEnabledFor(logging.WARNING):
            return False
        now = self._clock()
        with self._lock:
            if now < self._next.get(kind, 0.0):
                self._held[kind] = self._held.get(kind, 0) + 1
                return False
            self._next[kind] = now + self.every
            held = self._held.pop(kind, 0)
        if held:
            message += f" ({held} more like it in the last {self.every:g} s not shown)"
        self.logger.warning(message, *args)
        return True
