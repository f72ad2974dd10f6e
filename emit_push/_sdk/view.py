"""What both claimed-job helpers are made of: a core and a read-only view over it.

``JobCore`` is what every view of one claimed job shares (the descriptor, the logger
and its shipper, the kill flag); ``JobView`` reads it (``job.id``, ``job.log``...).
``AsyncClaimedJob`` and ``ClaimedJob`` (``claimed``) add the calls; the runner protocols
say what drives them (a client, or its driver).
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from typing_extensions import TypeVar as DefaultTypeVar

if TYPE_CHECKING:
    from .._logs.delivery import Delivery
    from .._logs.logger import Batch, JobLogger, LoggerOptions
    from .._logs.shipping import TaskShipper, ThreadShipper
    from .._wire.endpoints import Call
    from .._wire.models import JobDescriptor, JobDetails

__all__ = ["AsyncRunner", "JobCore", "JobView", "SyncRunner", "earlier_checkpoint"]

P = DefaultTypeVar("P", default=Any)
T = TypeVar("T")


class SyncRunner(Protocol):
    """Sends a call and returns its answer (``EmitClient`` is one, and its driver)."""

    def send(self, call: Call[T]) -> T: ...


class AsyncRunner(Protocol):
    """Sends a call and returns its answer (``AsyncEmitClient`` is one, and its driver)."""

    async def send(self, call: Call[T]) -> T: ...


class JobCore:
    """What every view of one claimed job shares: descriptor, logger, kill flag."""

    __slots__ = ("descriptor", "killed", "last_checkpoint", "log", "shipper")

    def __init__(
        self,
        descriptor: JobDescriptor,
        runner: SyncRunner | AsyncRunner,
        options: LoggerOptions | None,
        shipper_type: type[ThreadShipper] | type[TaskShipper],
    ) -> None:
        from .._logs.bridge import echo
        from .._logs.delivery import LogCursor, deliver
        from .._logs.logger import JobLogger, LogBuffer, LoggerOptions

        options = options or LoggerOptions()
        buffer = LogBuffer(options)
        job_id, gzip, cursor = descriptor.id, options.gzip, LogCursor()

        def delivery(batch: Batch) -> Delivery:
            return deliver(job_id, batch, cursor, gzip=gzip)

        self.descriptor = descriptor
        self.shipper = shipper_type(
            buffer, runner.send, delivery, options.flush_interval, f"emit-log-{job_id}"
        )
        repeat = echo(job_id, descriptor.name, descriptor.attempt_number, options.echo_level)
        self.log = JobLogger(buffer, self.shipper.notify, options.source, repeat)
        self.killed = False
        self.last_checkpoint: tuple[dict[str, Any] | None] | None = None
        """``(data,)`` once ``job.last_checkpoint()`` has read it; None before."""


class JobView(Generic[P]):
    __slots__ = ("_core", "_runner", "payload")

    payload: P
    """The job's payload: parsed JSON, or the typed value given to ``with_payload``."""

    def __init__(self, core: JobCore, runner: Any, payload: P) -> None:
        self._core = core
        self._runner = runner
        self.payload = payload

    @property
    def id(self) -> str:
        """The job's id."""
        return self._core.descriptor.id

    @property
    def name(self) -> str:
        """The job's type, e.g. ``"send-email"``."""
        return self._core.descriptor.name

    @property
    def attempt_number(self) -> int:
        """0 on the first attempt, +1 per retry."""
        return self._core.descriptor.attempt_number

    @property
    def max_retries(self) -> int:
        """How many retries the job has in all."""
        return self._core.descriptor.max_retries

    @property
    def timeout_seconds(self) -> int:
        """The inactivity window: progress, checkpoint and keepalive re-arm it."""
        return self._core.descriptor.timeout_seconds

    @property
    def created_at(self) -> datetime | None:
        """When the job was created."""
        return self._core.descriptor.created_at

    @property
    def descriptor(self) -> JobDescriptor:
        """The descriptor as the service sent it (unknown fields kept)."""
        return self._core.descriptor

    @property
    def log(self) -> JobLogger:
        """The job's batched logger: ``job.log.info("...", metadata={...})``."""
        return self._core.log

    @property
    def killed(self) -> bool:
        """True once a call learned that the job was killed (``JobKilledError``)."""
        return self._core.killed

    def _view(self, payload: object) -> Any:
        view: Any = object.__new__(type(self))
        view._core, view._runner, view.payload = self._core, self._runner, payload
        return view

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(id={self.id!r}, name={self.name!r}, "
            f"attempt_number={self.attempt_number})"
        )


def earlier_checkpoint(details: JobDetails | None, attempt_number: int) -> dict[str, Any] | None:
    """The data of the latest checkpoint that an attempt before ``attempt_number`` stored,
    from the job's history (``details.events``); None when there is none.

    Events come oldest first (the local server's order); a history that comes newest first
    (by ``createdAt``) is read the other way. A service that also sends the job's latest
    ``checkpoint`` (the local server does) covers a checkpoint older than the page of
    events it returned, when that page holds none.
    """
    if details is None:
        return None
    events = list(details.events)
    if events and events[0].created_at and events[-1].created_at:
        with contextlib.suppress(TypeError):  # naive and aware times: keep the order given
            if events[0].created_at > events[-1].created_at:
                events.reverse()
    checkpoints = [event for event in events if event.type == "checkpoint"]
    for event in reversed(checkpoints):
        earlier = event.attempt_number is None or event.attempt_number < attempt_number
        if earlier and isinstance(event.data, dict):
            return event.data
    latest = (details.model_extra or {}).get("checkpoint")
    return latest if not checkpoints and isinstance(latest, dict) else None
