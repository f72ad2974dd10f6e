"""What the commands say about a waiting job's pushes: each failure once, with its cause and
the fix, as it happens.

The local server records every push attempt in the job's history (``push_sent``,
``push_failed``) and streams it to the full views (DECIDED). A stream does not replay what
happened before it opened, so a job found waiting has its history read once as well:
:class:`PushNotes` takes both and says each failure once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .common import first_line

__all__ = ["PUSH_EVENTS", "PushNotes", "last_push_failure", "push_failure"]

PUSH_EVENTS = frozenset({"push_sent", "push_failed"})

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
    """Says each failure of a job's pushes once (``say``): a push retried with the same
    result is not said again; one that went through clears the slate."""

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
            key = push_failure({**data, "willRetry": False})  # the same failure, retried
            if key not in self._said:
                self._said.add(key)
                self._say(push_failure(data))

    async def catch_up(self, client: Any, job_id: str) -> None:
        """Read the job's history for a failed push from before the stream opened."""
        from .._exceptions import EmitError

        try:
            job = await client.jobs.get(job_id)
        except EmitError:  # the stream says what matters; this is only a note
            return
        failed = last_push_failure(job.events)
        if failed is not None:
            self.saw("push_failed", failed)
