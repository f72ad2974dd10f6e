"""How jobs run, defined once: the job options, and the polling loop's options.

``JobOptions`` is the one list of the nine per-handler options: ``EmitPush(...)`` takes
them as the app's defaults, ``on_job(...)`` overrides each, and ``client.workers`` takes
them with the TypeScript SDK's defaults (``SDK_DEFAULTS``). Their signatures read them
through ``Unpack[JobOptions]``; :func:`resolve` checks what was given and fills in the
rest from ``DEFAULTS``. A handler's options are a complete ``JobOptions``: every key is
there. ``PollOptions`` (defaults ``POLL_DEFAULTS``) are the polling loop's.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, TypedDict

from .._exceptions import ConfigurationError

if TYPE_CHECKING:
    import asyncio

    from .._logs.logger import LoggerOptions
    from .push import PushResult

__all__ = [
    "DEFAULTS",
    "POLL_DEFAULTS",
    "SDK_DEFAULTS",
    "JobOptions",
    "KeepaliveInterval",
    "OnError",
    "PollOptions",
    "WorkerOptions",
    "check_names",
    "resolve",
    "split",
]

KeepaliveInterval = Literal["auto"] | float | None
"""Seconds between keepalives; ``"auto"`` is a third of the job's timeout; None: none."""

OnError = Callable[[BaseException, Any], Awaitable[None] | None]
"""Called with the exception and the job when a handler raises (sync or async)."""


class JobOptions(TypedDict, total=False):
    """How jobs run; set on the app as defaults, and per handler to override them."""

    auto_ack: bool
    """Acknowledge the job before the function runs (default True)."""
    auto_fail_on_error: bool
    """Fail the job with the error when the function raises (default True)."""
    auto_complete: bool
    """Complete the job with the function's return value (default True)."""
    keepalive_interval: KeepaliveInterval
    """Seconds between keepalives (default ``"auto"``: a third of the job's timeout)."""
    stop_on_error: bool
    """Re-raise a handler's error after failing the job (push: ``handle_push`` raises it
    and the adapters answer 500, so the platform logs it; polling worker: the loop
    stops). Default False."""
    on_error: OnError | None
    """Called with the exception and the job when the function raises."""
    logger: LoggerOptions | None
    """Batching of ``job.log``; None: ``LoggerOptions()``."""
    max_runtime: float | None
    """Seconds a run may take at most; with the platform's time it sets the deadline."""
    deadline_margin: float
    """Seconds before the deadline at which the function is stopped and the job failed
    (default 1.0)."""


DEFAULTS: Final[JobOptions] = {
    "auto_ack": True,
    "auto_fail_on_error": True,
    "auto_complete": True,
    "keepalive_interval": "auto",
    "stop_on_error": False,
    "on_error": None,
    "logger": None,
    "max_runtime": None,
    "deadline_margin": 1.0,
}
SDK_DEFAULTS: Final[JobOptions] = {"auto_complete": False, "keepalive_interval": None}
"""The TypeScript SDK's defaults for its workers (``create_push_handler``, ``handle_push``,
``run_polling``): the function completes the job itself, no keepalives unless asked.
(``EmitPush`` handlers default to completing with the return value, and keepalives.)"""


class PollOptions(TypedDict, total=False):
    """The polling loop's options (``run_polling``), beside the job options."""

    types: str | list[str] | tuple[str, ...] | None
    """The job names to poll for; default: the names of the app's handlers."""
    count: int
    """Jobs claimed and run at once per round, 1-50 (default 1)."""
    poll_interval: float
    """Seconds between polls while idle, doubled with jitter up to ``max_backoff`` (1.0)."""
    max_backoff: float
    """The longest wait between idle polls (15.0)."""
    stop: asyncio.Event | threading.Event | None
    """Set it to stop the loop (a ``threading.Event`` from another thread)."""
    grace_period: float
    """Seconds running jobs get when stopping, then they are failed back (30.0)."""
    handle_signals: bool
    """Stop on SIGTERM and SIGINT (default True; main thread only)."""
    on_done: Callable[[PushResult], Any] | None
    """Sees each job's result."""


class WorkerOptions(JobOptions, PollOptions, total=False):
    """``client.workers.run_polling``'s options: the job options and the loop's."""


def split(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``options`` as the job options, and the polling loop's."""
    loop = {k: v for k, v in options.items() if k in PollOptions.__optional_keys__}
    return {k: v for k, v in options.items() if k not in loop}, loop


POLL_DEFAULTS: Final[PollOptions] = {
    "types": None,
    "count": 1,
    "poll_interval": 1.0,
    "max_backoff": 15.0,
    "stop": None,
    "grace_period": 30.0,
    "handle_signals": True,
    "on_done": None,
}


def check_names(
    given: Iterable[str], known: Collection[str], where: str, what: str = "options"
) -> None:
    """``TypeError`` (as Python raises for a keyword) naming the unknown options."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise TypeError(f"{where}: unknown {what} {unknown}; the {what} are {sorted(known)}")


def resolve(base: JobOptions, given: Mapping[str, Any], *, where: str = "on_job") -> JobOptions:
    """``base`` with ``given`` over it: checked, complete. Raises for an unknown name
    (``TypeError``) or a bad value (``ConfigurationError``); ``where`` names the call."""
    check_names(given, DEFAULTS, where, "job options")
    options: JobOptions = {**DEFAULTS, **base, **given}  # type: ignore[typeddict-item]
    _check(options)
    return options


def _check(options: JobOptions) -> None:
    interval = options["keepalive_interval"]
    if not (interval in ("auto", None) or _positive(interval)):
        raise ConfigurationError('keepalive_interval must be "auto", a positive number or None')
    runtime = options["max_runtime"]
    if runtime is not None and not _positive(runtime):
        raise ConfigurationError("max_runtime must be a positive number of seconds")
    margin = options["deadline_margin"]
    if not (_positive(margin) or margin == 0):
        raise ConfigurationError("deadline_margin must be a number of seconds >= 0")
    logger = options["logger"]
    if logger is not None and not _is_logger_options(logger):
        raise ConfigurationError("logger must be a LoggerOptions")


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _is_logger_options(value: object) -> bool:
    from .._logs.logger import LoggerOptions  # loaded already when one was made

    return isinstance(value, LoggerOptions)
