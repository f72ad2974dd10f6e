"""What the commands that follow a job say besides its progress and logs: how each failed
attempt failed (:class:`Attempts`), and why a job waits: each failed push with its cause
and the fix, or that nothing has taken it (:class:`PushNotes`).

The local server records every push attempt in the job's history (``push_sent``,
``push_failed``) and streams it to the full views (DECIDED). A stream does not replay what
happened before it opened, so a follower that comes late reads the job's history once as
well: both classes take either and say each thing once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from .common import first_line

__all__ = [
    "PENDING_NOTICE",
    "PUSH_EVENTS",
    "Attempts",
    "PushNotes",
    "attempt_failed",
    "catch_up",
    "last_push_failure",
    "push_failure",
]

PUSH_EVENTS = frozenset({"push_sent", "push_failed"})
PENDING_NOTICE = 3.0
"""Seconds a job may wait, with no failed push to explain it, before it is said to wait."""

_REDIRECT = "a redirect: an app mounted at /path takes pushes at /path/ (mind the trailing slash)"
_SECRET = "the app refused its push secret: check the header in the space's push settings"
_PUSH_HINTS = {307: _REDIRECT, 308: _REDIRECT, 401: _SECRET, 403: _SECRET}


def push_failure(data: dict[str, Any]) -> str:
    """What a ``push_failed`` event's data says: ``push to URL failed: HTTP 307; <hint>``.

    The hint is the server's (``hint``); a server that gives none gets ours for the
    failures that have a usual cause (a redirect, a refused secret).
    """
    url = data.get("url")
    status = data.get("statusCode")
    what = first_line(data.get("error")) or (f"HTTP {status}" if status is not None else "")
    text = "push" + (f" to {url}" if isinstance(url, str) else "") + " failed"
    text += f": {what}" if what else ""
    hint = first_line(data.get("hint"))
    if not hint and isinstance(status, int):
        hint = _PUSH_HINTS.get(status, "")
    if hint:
        text += f"; {hint}"
    if data.get("willRetry"):
        text += " (it will be sent again)"
    elif data.get("willRetry") is False:
        text += " (no more retries: once fixed, Re-push it from the dashboard)"
    return text


def last_push_failure(events: Iterable[Any]) -> dict[str, Any] | None:
    """The data of the last push event (``push_sent``, ``push_failed``) of a job's
    history (``JobEvent``s) when it is ``push_failed``; else None."""
    for event in reversed(list(events)):
        if event.type == "push_sent":
            return None
        if event.type == "push_failed":
            return event.data if isinstance(event.data, dict) else {}
    return None


class PushNotes:
    """Says why a job waits (``say``): each failure of its pushes once (a push retried with
    the same result is not said again; one that went through clears the slate), or, with
    no failed push to explain it, that nothing has taken it (:meth:`unclaimed`)."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say
        self._said: set[str] = set()
        self.failing = False
        """Whether the job's last push known here failed."""

    def saw(self, kind: str, data: Any) -> None:
        """A push event, from a stream or the history."""
        if kind == "push_sent":
            self._said.clear()
            self.failing = False
        elif kind == "push_failed":
            data = data if isinstance(data, dict) else {}
            self.failing = True
            # The same failure retried is said once; its last try once more (no retries).
            key = push_failure({**data, "willRetry": data.get("willRetry") is not False})
            if key not in self._said:
                self._said.add(key)
                self._say(push_failure(data))

    async def unclaimed(self, status: Callable[[], str | None]) -> None:
        """Once, for a job still pending (``status()``) after ``PENDING_NOTICE`` seconds
        and not for a failed push: that nothing has taken it. Run it as a task."""
        while True:
            await asyncio.sleep(PENDING_NOTICE)
            if status() == "pending" and not self.failing:
                self._say(
                    "no worker has taken the job yet (is `emit-push dev` or `emit-push worker`"
                    " running with a handler for it?)"
                )
                return


def attempt_failed(event: Any) -> str:
    """A ``retried`` event as a line: ``attempt #0 failed: Error: why (retrying as #1)``."""
    data = event.data if isinstance(event.data, dict) else {}
    error = first_line(data.get("error")) or "(no error given)"
    attempt = data.get("attemptNumber")
    if not isinstance(attempt, int):
        return f"an attempt failed: {error} (retrying)"
    return f"attempt #{attempt - 1} failed: {error} (retrying as #{attempt})"


class Attempts:
    """Says each failed attempt of a job once (``say``, an :func:`attempt_failed` line):
    from the stream as it fails, and from the job's history for those before it opened."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say
        self._said: set[object] = set()

    def saw(self, event: Any) -> None:
        """A ``retried`` event, from a stream or the history."""
        data = event.data if isinstance(event.data, dict) else {}
        attempt = data.get("attemptNumber")
        if attempt not in self._said:
            self._said.add(attempt)
            self._say(attempt_failed(event))


async def catch_up(
    client: Any, job_id: str, init: Any, pushes: PushNotes, attempts: Attempts | None
) -> None:
    """What went by before a follower's stream opened (``init``, its first event), from the
    job's history, read once and only when it can tell something: the failed push of a
    pending job (``pushes``), the failed attempts of a job past its first (``attempts``)."""
    from .._exceptions import EmitError

    job = init.data if isinstance(init.data, dict) else {}
    pending = init.status == "pending"
    retried = attempts is not None and bool(job.get("attemptNumber"))
    if not (pending or retried):
        return
    try:
        events = (await client.jobs.get(job_id)).events
    except EmitError:  # the stream says what matters; this is only a note
        return
    if attempts is not None and retried:
        for event in events:
            if event.type == "retried":
                attempts.saw(event)
    failed = last_push_failure(events) if pending else None
    if failed is not None:
        pushes.saw("push_failed", failed)
