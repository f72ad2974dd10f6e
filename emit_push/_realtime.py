"""``client.realtime``: follow a job or a whole space live over WebSocket (contract §8).

``connect_job`` / ``connect_space`` start a stream and return its connection at once;
events go to ``on_event``. ``job`` / ``space`` are the iterator form. One driver runs
every stream (``_realtime_driver``) on asyncio: ``AsyncEmitClient``'s as a task on the
running loop, ``EmitClient``'s on a loop of its own in a background thread, whose callbacks
are called from that thread. Reconnect policy, cursor and close codes live in
``_realtime_protocol``.
"""

from __future__ import annotations

import asyncio
import queue
import random
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Generic, TypeVar

from ._config import ClientConfig
from ._exceptions import InvalidInputError
from ._realtime_connection import AsyncRealtimeConnection, RealtimeConnection, StopEvent
from ._realtime_driver import Callbacks, Sleep, StreamRunner
from ._realtime_models import RealtimeClose, RealtimeEvent
from ._realtime_protocol import Session

__all__ = ["AsyncRealtime", "AsyncRealtimeConnection", "Realtime", "RealtimeConnection"]


C = TypeVar("C", RealtimeConnection, AsyncRealtimeConnection)


class _Streams(Generic[C]):
    def __init__(self, config: ClientConfig) -> None:
        self._config = config
        # For tests: the backoff's sleep (an async function, run on the stream's loop), its
        # jitter, and extra options for websockets' connect().
        self._sleep: Sleep = asyncio.sleep
        self._random: Callable[[], float] = random.random
        self._connect_options: dict[str, Any] = {}

    def _open(self, runner: StreamRunner, stop: StopEvent | None) -> C:
        raise NotImplementedError

    def _runner(
        self,
        session: Session,
        callbacks: Callbacks,
        token: str | None,
        use_api_key: bool,
    ) -> StreamRunner:
        if token is not None and (not isinstance(token, str) or not token.strip()):
            raise InvalidInputError("token must be a non-empty string")
        if token is not None and use_api_key:
            raise InvalidInputError("pass token= or use_api_key=True, not both")
        return StreamRunner(
            session, self._config, callbacks,
            token=token and token.strip(), use_api_key=use_api_key,
            sleep=self._sleep, connect_options=self._connect_options,
        )  # fmt: skip

    def _job(
        self, job_id: str, token: str | None, use_api_key: bool, callbacks: Callbacks,
        auto_reconnect: bool, reconnect_delay: float, max_reconnect_delay: float,
    ) -> StreamRunner:  # fmt: skip
        session = Session(
            "job", job_id, auto_reconnect=auto_reconnect, reconnect_delay=reconnect_delay,
            max_reconnect_delay=max_reconnect_delay, rand=self._random,
        )  # fmt: skip
        return self._runner(session, callbacks, token, use_api_key)

    def _space(
        self, space_id: str | None, since: int | None, stream_instance_id: str | None,
        token: str | None, callbacks: Callbacks, auto_reconnect: bool,
        reconnect_delay: float, max_reconnect_delay: float,
    ) -> StreamRunner:  # fmt: skip
        session = Session(
            "space", self._config.space_id if space_id is None else space_id,
            auto_reconnect=auto_reconnect, reconnect_delay=reconnect_delay,
            max_reconnect_delay=max_reconnect_delay, since=since,
            stream_instance_id=stream_instance_id, rand=self._random,
        )  # fmt: skip
        return self._runner(session, callbacks, token, use_api_key=token is None)

    def connect_job(
        self,
        job_id: str,
        *,
        token: str | None = None,
        use_api_key: bool = False,
        auto_reconnect: bool = False,
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 15.0,
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
        Setting ``stop`` ends the stream, as ``close()`` does.

            conn = client.realtime.connect_job(job_id, on_event=lambda e: print(e.type))
        """
        callbacks = Callbacks(on_open, on_event, on_error, on_close)
        runner = self._job(
            job_id, token, use_api_key, callbacks,
            auto_reconnect, reconnect_delay, max_reconnect_delay,
        )  # fmt: skip
        return self._open(runner, stop)

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
        callbacks = Callbacks(on_open, on_event, on_error, on_close)
        runner = self._space(
            space_id, since, stream_instance_id, token, callbacks,
            auto_reconnect, reconnect_delay, max_reconnect_delay,
        )  # fmt: skip
        return self._open(runner, stop)


class Realtime(_Streams[RealtimeConnection]):
    """``EmitClient.realtime``: job and space streams, each in a background thread.

    for event in client.realtime.job(job_id):
        print(event.type, event.data)
    """

    def _open(self, runner: StreamRunner, stop: StopEvent | None) -> RealtimeConnection:
        return RealtimeConnection(runner, stop)

    def job(
        self,
        job_id: str,
        *,
        token: str | None = None,
        use_api_key: bool = False,
        auto_reconnect: bool = False,
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 15.0,
        stop: StopEvent | None = None,
    ) -> Generator[RealtimeEvent, None, None]:
        """The events of one job, until it ends; options as for ``connect_job``.

        Raises the error that ended the stream, if one did. Leaving the loop (or closing
        the iterator) closes the stream.
        """
        items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        runner = self._job(
            job_id, token, use_api_key, Callbacks(on_event=items.put),
            auto_reconnect, reconnect_delay, max_reconnect_delay,
        )  # fmt: skip
        return self._events(runner, items, stop)

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
        stop: StopEvent | None = None,
    ) -> Generator[RealtimeEvent, None, None]:
        """The events of a space, ``Connected`` first; options as for ``connect_space``."""
        items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        runner = self._space(
            space_id, since, stream_instance_id, token, Callbacks(on_event=items.put),
            auto_reconnect, reconnect_delay, max_reconnect_delay,
        )  # fmt: skip
        return self._events(runner, items, stop)

    @staticmethod
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


class AsyncRealtime(_Streams[AsyncRealtimeConnection]):
    """``AsyncEmitClient.realtime``: job and space streams, as tasks on the running loop.

    async for event in client.realtime.job(job_id):
        print(event.type, event.data)
    """

    def _open(self, runner: StreamRunner, stop: StopEvent | None) -> AsyncRealtimeConnection:
        return AsyncRealtimeConnection(runner, stop)

    def job(
        self,
        job_id: str,
        *,
        token: str | None = None,
        use_api_key: bool = False,
        auto_reconnect: bool = False,
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 15.0,
        stop: StopEvent | None = None,
    ) -> AsyncGenerator[RealtimeEvent, None]:
        """The events of one job, until it ends; options as for ``connect_job``.

        Raises the error that ended the stream, if one did. Breaking out of the loop
        closes the stream once the iterator is collected; ``contextlib.aclosing(...)``
        closes it at once.
        """
        items: asyncio.Queue[Any] = asyncio.Queue()
        runner = self._job(
            job_id, token, use_api_key, Callbacks(on_event=items.put_nowait),
            auto_reconnect, reconnect_delay, max_reconnect_delay,
        )  # fmt: skip
        return self._events(runner, items, stop)

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
        stop: StopEvent | None = None,
    ) -> AsyncGenerator[RealtimeEvent, None]:
        """The events of a space, ``Connected`` first; options as for ``connect_space``."""
        items: asyncio.Queue[Any] = asyncio.Queue()
        runner = self._space(
            space_id, since, stream_instance_id, token, Callbacks(on_event=items.put_nowait),
            auto_reconnect, reconnect_delay, max_reconnect_delay,
        )  # fmt: skip
        return self._events(runner, items, stop)

    @staticmethod
    async def _events(
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
