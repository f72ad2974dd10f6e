"""Following a job or a space from the shell: its stream, riding out a server restart or
a lost connection, and the notes said meanwhile on standard error (``watch``, ``jobs
create --wait``, ``jobs logs --follow``)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TYPE_CHECKING

from .common import stream_error

if TYPE_CHECKING:
    from .._realtime.connection import AsyncRealtimeConnection
    from .._realtime.events import RealtimeEvent

__all__ = ["say", "stream"]


def say(text: str) -> None:
    """A note on standard error (standard output stays the command's result)."""
    print(f"emit-push: {text}", file=sys.stderr, flush=True)


@contextlib.asynccontextmanager
async def stream(
    open_stream: Callable[..., AsyncRealtimeConnection],
    base_url: str | None,
    *,
    notice: Callable[[str], None] = say,
    wait_for_server: bool = False,
) -> AsyncIterator[AsyncIterator[RealtimeEvent]]:
    """The events of a stream that rides out a server restart or a lost connection.

    Each outage is one ``notice``, and its end another. A server that did not answer the
    first connection ends the stream with that error (a one-shot question, like any other
    command's), unless ``wait_for_server``: then the first failure is a notice with the
    fix, and the stream keeps trying quietly. Other errors that end the stream (a refused
    key, an unknown job) are raised.
    """
    from .._exceptions import RealtimeError

    items: asyncio.Queue[RealtimeEvent | None] = asyncio.Queue()
    opened = outage = False
    unanswered: list[RealtimeError] = []

    def on_open() -> None:
        nonlocal opened, outage
        if outage and opened:
            notice("reconnected")
        opened, outage = True, False

    def on_error(exc: Exception) -> None:
        nonlocal outage
        if not isinstance(exc, RealtimeError) or exc.reconnect_in is None or outage:
            return  # one notice per outage; an error that ends the stream is raised
        outage = True
        if not opened and not wait_for_server:
            unanswered.append(exc)
            connection.close()
        elif not opened:
            notice(f"{stream_error(exc, base_url, None)} (retrying; Ctrl-C stops)")
        else:
            why = "the server stopped" if exc.close_code == 1012 else "lost the connection"
            code = f" (close code {exc.close_code})" if exc.close_code else ""
            notice(f"{why}{code}; reconnecting when it is back (Ctrl-C stops)")

    connection = open_stream(
        auto_reconnect=True, on_event=items.put_nowait, on_open=on_open, on_error=on_error
    )
    ended = asyncio.ensure_future(connection.wait())
    ended.add_done_callback(lambda _: items.put_nowait(None))  # after its last event

    async def read() -> AsyncGenerator[RealtimeEvent, None]:
        while (event := await items.get()) is not None:
            yield event
        error = unanswered[0] if unanswered else connection.error
        if error is not None:
            raise error

    events = read()
    try:
        yield events
    finally:
        await events.aclose()
        await connection.aclose()
        await ended
