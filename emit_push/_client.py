"""``EmitClient`` and ``AsyncEmitClient``: the SDK's clients, composed.

``client.jobs`` and ``client.send`` are the SDK's (``_sdk.client``), ``client.realtime``
follows jobs live (``_realtime``), and ``client.workers`` runs job functions the
TypeScript SDK's way, on the framework (``_framework.workers``). So the public clients
stand above the framework: ``EmitPush`` makes the SDK's ``AsyncClient`` underneath, and
``client.workers.create_push_handler`` returns an ``EmitPush``. Each part is made on
first use (a cold start that never follows a stream loads no WebSocket code).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from ._sdk.client import AsyncClient, Client

if TYPE_CHECKING:
    from ._framework.workers import AsyncWorkers, Workers
    from ._realtime.streams import AsyncRealtime, Realtime

__all__ = ["AsyncEmitClient", "EmitClient"]


class EmitClient(Client):
    """The emit.run API for sync code, scoped to one space.

    Every setting defaults from the environment (``EMIT_SPACE_ID``, ``EMIT_API_KEY``,
    ``EMIT_BASE_URL``); see ``Client`` for each argument.

        with EmitClient() as client:
            ref = client.jobs.create({"name": "send-email", "payload": {"to": "a@b.c"}})
            for job in client.jobs.poll(types="send-email"):
                with job:
                    job.ack()
                    job.complete({"sent": True})
    """

    @functools.cached_property
    def realtime(self) -> Realtime:
        """Follow a job or the whole space live (WebSocket streams)."""
        from ._realtime.streams import Realtime

        return Realtime(self.config)

    @functools.cached_property
    def workers(self) -> Workers:
        """Run job functions: push handlers and polling."""
        from ._framework.workers import Workers

        return Workers(self)


class AsyncEmitClient(AsyncClient):
    """The emit.run API for async code, scoped to one space; see ``EmitClient``.

    async with AsyncEmitClient() as client:
        for job in await client.jobs.poll(types="send-email"):
            async with job:
                await job.ack()
                job.log.info("sending")
                await job.complete({"sent": True})
    """

    @functools.cached_property
    def realtime(self) -> AsyncRealtime:
        """Follow a job or the whole space live (WebSocket streams)."""
        from ._realtime.streams import AsyncRealtime

        return AsyncRealtime(self.config)

    @functools.cached_property
    def workers(self) -> AsyncWorkers:
        """Run job functions: push handlers and polling."""
        from ._framework.workers import AsyncWorkers

        return AsyncWorkers(self)
