"""``client.realtime``: follow a job or a whole space live over WebSocket (contract §8).

``connect_job`` / ``connect_space`` start a stream and return its connection at once;
events go to ``on_event``. ``job`` / ``space`` are the iterator form. ``_Streams`` defines
the four once, each turning its keywords into one ``StreamOptions`` and one ``Callbacks``;
``Realtime`` (``EmitClient``) and ``AsyncRealtime`` (``AsyncEmitClient``) add only where a
stream runs (``connection``): in a thread of its own, which calls the callbacks, or as a
task on the running loop.
"""

from __future__ import annotations

import asyncio
import queue
import random
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Generic, TypeVar

from .._sdk.config import ClientConfig
from .connection import AsyncRealtimeConnection, RealtimeConnection, StopEvent
from .driver import Sleep, StreamRunner
from .events import RealtimeClose, RealtimeEvent
from .options import Callbacks, Connect, StreamOptions
from .protocol import Session, StreamKind

__all__ = ["AsyncRealtime", "AsyncRealtimeConnection", "Realtime", "RealtimeConnection"]

C = TypeVar("C", RealtimeConnection, AsyncRealtimeConnection)
E = TypeVar("E", Generator[RealtimeEvent, None, None], AsyncGenerator[RealtimeEvent, None])


class _Streams(Generic[C, E]):
    """The public methods of both kinds; a kind supplies ``_open`` and ``_iterate``."""

    def __init__(self, config: ClientConfig) -> None:
        self._config = config
        # For tests: the backoff's sleep (an async function, run on the stream's loop), its
        # jitter, and extra options for websockets' connect().
        self._sleep: Sleep = asyncio.sleep
        self._random: Callable[[], float] = random.random
        self._connect_options: dict[str, Any] = {}

    def _open(self, runner: StreamRunner, stop: StopEvent | None) -> C:
        """Start ``runner``'s stream; its connection."""
        raise NotImplementedError

    def _iterate(self, session: Session, stop: StopEvent | None) -> E:
        """An iterator over ``session``'s events, whose stream starts when iteration does."""
        raise NotImplementedError

    def _session(self, kind: StreamKind, target: str, options: StreamOptions) -> Session:
        return Session(kind, target, options, rand=self._random)

    def _runner(self, session: Session, callbacks: Callbacks) -> StreamRunner:
        return StreamRunner(
            session,
            self._config,
            callbacks,
            sleep=self._sleep,
            connect_options=self._connect_options,
        )

    def _space_id(self, space_id: str | None) -> str:
        return self._config.space_id if space_id is None else space_id

    def connect_job(
        self,
        job_id: str,
        *,
        token: str | None = None,
        use_api_key: bool = False,
        auto_reconnect: bool = False,
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 15.0,
        connect: Connect | None = None,
        on_open: Callable[[], Any] | None = None,
        on_event: Callable[[RealtimeEvent], Any] | None = None,
        on_error: Callable[[Exception], Any] | None = None,
        on_close: Callable[[RealtimeClose], Any] | None = None,
        stop: StopEvent | None = None,
    ) -> C:
        """Follow one job: ``init``, then its events, until it ends (close 1000).

        Without ``token`` the stream is anonymous: the progress-only view (``init``,
        ``progress``, ``completed`` without data). ``token="..."`` sends that key;
        ``use_api_key=True`` the client's (for the full view, ``jobs:read``). With
        ``auto_reconnect`` a lost connection is retried after ``reconnect_delay``
        seconds, doubling up to ``max_reconnect_delay`` (with jitter); a refused one
        (4401, 4403, 4404) never is. Callbacks may be functions or async functions;
        ``on_error`` gets every failure (``RealtimeError``), ``on_close`` every close.
        Setting ``stop`` ends the stream, as ``close()`` does. ``connect`` opens each
        connection's socket instead of ``websockets``' ``connect`` (the TypeScript SDK's
        ``webSocketFactory``: a proxy, TLS settings, another library; see ``Connect``).

            conn = client.realtime.connect_job(job_id, on_event=lambda e: print(e.type))
        """
        options = StreamOptions(
            token=token,
            use_api_key=use_api_key,
            auto_reconnect=auto_reconnect,
            reconnect_delay=reconnect_delay,
            max_reconnect_delay=max_reconnect_delay,
            connect=connect,
        )
        session = self._session("job", job_id, options)
        callbacks = Callbacks(on_open, on_event, on_error, on_close)
        return self._open(self._runner(session, callbacks), stop)

    def connect_space(
        self,
        space_id: str | None = None,
        *,
        since: int | None = None,
        stream_instance_id: str | None = None,
        token: str | None = None,
        auto_reconnect: bool = False,
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 15.0,
        connect: Connect | None = None,
        on_open: Callable[[], Any] | None = None,
        on_event: Callable[[RealtimeEvent], Any] | None = None,
        on_error: Callable[[Exception], Any] | None = None,
        on_close: Callable[[RealtimeClose], Any] | None = None,
        stop: StopEvent | None = None,
    ) -> C:
        """Follow every job of a space (the client's by default; needs ``jobs:read``).

        The first event of each connection is ``Connected`` (``seq``,
        ``stream_instance_id``, ``missed``, ``counts``). The connection keeps the cursor
        and resumes from it when it reconnects; pass ``since=`` and
        ``stream_instance_id=`` to resume an earlier stream. ``missed=True`` means events
        went by unseen (there is no replay): re-read over HTTP. The client's API key is
        sent unless ``token`` is given. Other options as for ``connect_job``.

            conn = client.realtime.connect_space(auto_reconnect=True, on_event=handle)
        """
        options = StreamOptions(
            token=token,
            use_api_key=token is None,
            auto_reconnect=auto_reconnect,
            reconnect_delay=reconnect_delay,
            max_reconnect_delay=max_reconnect_delay,
            connect=connect,
            since=since,
            stream_instance_id=stream_instance_id,
        )
        session = self._session("space", self._space_id(space_id), options)
        callbacks = Callbacks(on_open, on_event, on_error, on_close)
        return self._open(self._runner(session, callbacks), stop)

    def job(
        self,
        job_id: str,
        *,
        token: str | None = None,
        use_api_key: bool = False,
        auto_reconnect: bool = False,
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 15.0,
        connect: Connect | None = None,
        stop: StopEvent | None = None,
    ) -> E:
        """The events of one job, until it ends; options as for ``connect_job``.

        Raises the error that ended the stream, if one did. Leaving the loop closes the
        stream: at once for ``EmitClient``'s; for ``AsyncEmitClient``'s once the iterator
        is collected (``contextlib.aclosing(...)`` closes it at once).
        """
        options = StreamOptions(
            token=token,
            use_api_key=use_api_key,
            auto_reconnect=auto_reconnect,
            reconnect_delay=reconnect_delay,
            max_reconnect_delay=max_reconnect_delay,
            connect=connect,
        )
        return self._iterate(self._session("job", job_id, options), stop)

    def space(
        self,
        space_id: str | None = None,
        *,
        since: int | None = None,
        stream_instance_id: str | None = None,
        token: str | None = None,
        auto_reconnect: bool = False,
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 15.0,
        connect: Connect | None = None,
        stop: StopEvent | None = None,
    ) -> E:
        """The events of a space, ``Connected`` first; options as for ``connect_space``."""
        options = StreamOptions(
            token=token,
            use_api_key=token is None,
            auto_reconnect=auto_reconnect,
            reconnect_delay=reconnect_delay,
            max_reconnect_delay=max_reconnect_delay,
            connect=connect,
            since=since,
            stream_instance_id=stream_instance_id,
        )
        return self._iterate(self._session("space", self._space_id(space_id), options), stop)


class Realtime(_Streams[RealtimeConnection, Generator[RealtimeEvent, None, None]]):
    """``EmitClient.realtime``: job and space streams, each in a background thread.

    for event in client.realtime.job(job_id):
        print(event.type, event.data)
    """

    def _open(self, runner: StreamRunner, stop: StopEvent | None) -> RealtimeConnection:
        return RealtimeConnection(runner, stop)

    def _iterate(
        self, session: Session, stop: StopEvent | None
    ) -> Generator[RealtimeEvent, None, None]:
        items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        return _events(self._runner(session, Callbacks(on_event=items.put)), items, stop)


class AsyncRealtime(_Streams[AsyncRealtimeConnection, AsyncGenerator[RealtimeEvent, None]]):
    """``AsyncEmitClient.realtime``: job and space streams, as tasks on the running loop.

    async for event in client.realtime.job(job_id):
        print(event.type, event.data)
    """

    def _open(self, runner: StreamRunner, stop: StopEvent | None) -> AsyncRealtimeConnection:
        return AsyncRealtimeConnection(runner, stop)

    def _iterate(
        self, session: Session, stop: StopEvent | None
    ) -> AsyncGenerator[RealtimeEvent, None]:
        items: asyncio.Queue[Any] = asyncio.Queue()
        return _aevents(self._runner(session, Callbacks(on_event=items.put_nowait)), items, stop)


def _events(
    runner: StreamRunner, items: queue.SimpleQueue[Any], stop: StopEvent | None
) -> Generator[RealtimeEvent, None, None]:
    end = object()
    connection = RealtimeConnection(runner, stop, on_end=lambda: items.put(end))
    try:
        while (item := items.get()) is not end:
            yield item
        if connection.error is not None:
            raise connection.error
    finally:
        connection.close()


async def _aevents(
    runner: StreamRunner, items: asyncio.Queue[Any], stop: StopEvent | None
) -> AsyncGenerator[RealtimeEvent, None]:
    end = object()
    connection = AsyncRealtimeConnection(runner, stop, on_end=lambda: items.put_nowait(end))
    try:
        while (item := await items.get()) is not end:
            yield item
        if connection.error is not None:
            raise connection.error
    finally:
        await connection.aclose()
