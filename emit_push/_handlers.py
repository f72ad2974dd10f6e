"""Registered job handlers: the function, its options, and its payload type.

Everything about a handler that can be decided once is decided at registration: whether
it is ``async def``, which payload type it declares (``Job[Model]``) and the pydantic
``TypeAdapter`` that validates it, and its options merged over the app's defaults.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import re
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ._exceptions import ConfigurationError

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from ._logger import LoggerOptions

__all__ = [
    "UNSET",
    "Handler",
    "JobOptions",
    "KeepaliveInterval",
    "OnError",
    "is_async_function",
    "make_handler",
]

KeepaliveInterval = Literal["auto"] | float | None
"""Seconds between keepalives; ``"auto"`` is a third of the job's timeout; None: none."""

OnError = Callable[[BaseException, Any], Awaitable[None] | None]
"""Called with the exception and the job when a handler raises (sync or async)."""


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""An option not given: the app's default applies."""


@dataclass(frozen=True, slots=True)
class JobOptions:
    """How jobs run; set on the app as defaults, and per handler to override them."""

    auto_ack: bool = True
    """Acknowledge the job before the function runs."""
    auto_fail_on_error: bool = True
    """Fail the job with the error when the function raises."""
    auto_complete: bool = True
    """Complete the job with the function's return value."""
    keepalive_interval: KeepaliveInterval = "auto"
    stop_on_error: bool = False
    """Re-raise a handler's error after failing the job (push: ``handle_push`` raises it
    and the adapters answer 500, so the platform logs it; polling worker: the loop
    stops)."""
    on_error: OnError | None = None
    logger: LoggerOptions | None = None
    """Batching of ``job.log``; None: ``LoggerOptions()``."""
    max_runtime: float | None = None
    """Seconds a run may take at most; with the platform's time it sets the deadline."""
    deadline_margin: float = 1.0
    """Seconds before the deadline at which the function is stopped and the job failed."""

    def __post_init__(self) -> None:
        interval = self.keepalive_interval
        if not (interval in ("auto", None) or _positive(interval)):
            raise ConfigurationError('keepalive_interval must be "auto", a positive number or None')
        if self.max_runtime is not None and not _positive(self.max_runtime):
            raise ConfigurationError("max_runtime must be a positive number of seconds")
        if not (_positive(self.deadline_margin) or self.deadline_margin == 0):
            raise ConfigurationError("deadline_margin must be a number of seconds >= 0")
        if self.logger is not None and not _is_logger_options(self.logger):
            raise ConfigurationError("logger must be a LoggerOptions")

    def keepalive_every(self, timeout_seconds: float) -> float | None:
        if self.keepalive_interval == "auto":
            return max(timeout_seconds / 3, 0.05)
        return self.keepalive_interval

    def merged(self, **overrides: Any) -> JobOptions:
        given = {k: v for k, v in overrides.items() if v is not UNSET}
        return dataclasses.replace(self, **given) if given else self


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _is_logger_options(value: object) -> bool:
    from ._logger import LoggerOptions  # loaded already when one was made

    return isinstance(value, LoggerOptions)


@dataclass(frozen=True, slots=True)
class Handler:
    """One registered function."""

    name: str
    func: Callable[..., Any]
    is_async: bool
    payload: TypeAdapter[Any] | None
    """Validates the payload into the declared type; None: the parsed JSON as is."""
    options: JobOptions


def make_handler(
    name: str, func: Callable[..., Any], options: JobOptions, payload: Any = UNSET
) -> Handler:
    """Inspect ``func`` once: sync or async, and the payload type it declares."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError("on_job needs a job name, e.g. @app.on_job('send-email')")
    if not callable(func):
        raise ConfigurationError(f"on_job({name!r}) must decorate a function")
    is_async = is_async_function(func)
    declared, job_class = _declared(name, func, strict=payload is UNSET)
    if job_class is not None and job_class.__name__ == "SyncJob" and is_async:
        raise ConfigurationError(f"{name}: an async def handler receives Job, not SyncJob")
    if job_class is not None and job_class.__name__ == "Job" and not is_async:
        raise ConfigurationError(f"{name}: a def handler receives SyncJob, not Job")
    if payload is UNSET:
        payload = declared
    if payload in (None, Any):
        return Handler(name, func, is_async, None, options)
    from pydantic import PydanticUserError, TypeAdapter  # only for a typed payload

    try:
        adapter: TypeAdapter[Any] = TypeAdapter(payload)
    except PydanticUserError as exc:
        shown = getattr(payload, "__name__", repr(payload))
        raise ConfigurationError(
            f"{name}: payloads cannot be validated as {shown} ({exc.message.splitlines()[0]})"
        ) from None
    return Handler(name, func, is_async, adapter, options)


def is_async_function(func: object) -> bool:
    """Whether calling ``func`` gives a coroutine: an ``async def`` (or a partial of one),
    or an object whose ``__call__`` is one."""
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.iscoroutinefunction(func):
        return True
    return inspect.iscoroutinefunction(type(func).__call__)


def _declared(name: str, func: Callable[..., Any], *, strict: bool) -> tuple[Any, type | None]:
    """The payload type of ``job: Job[Model]`` (or ``SyncJob[Model]``), and that class.

    Only the first parameter's annotation is read. One that names ``Job[...]`` or
    ``SyncJob[...]`` but cannot be resolved is an error: silently running without
    validation would be worse. A bare ``Job`` needs no resolving: it has no payload type.
    """
    from ._handler_job import Job, SyncJob

    target = func
    while isinstance(target, functools.partial):
        target = target.func
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return None, None
    if not params or params[0].annotation is inspect.Parameter.empty:
        return None, None
    annotation = params[0].annotation
    if isinstance(annotation, str):
        if not _NAMES_A_JOB.match(annotation):
            return None, None  # another annotation: not ours to read
        try:
            scope = dict(getattr(target, "__globals__", {}))
            with contextlib.suppress(TypeError):
                scope.update(inspect.getclosurevars(target).nonlocals)
            annotation = eval(annotation, scope)  # what typing.get_type_hints does
        except Exception as exc:
            if not strict:  # payload= names the type: the annotation is only a hint
                return None, None
            if bare := _BARE_JOB.match(annotation):  # no payload type to lose
                return None, SyncJob if bare.group(1) else Job
            raise ConfigurationError(
                f"{name}: cannot resolve the annotation {params[0].annotation!r} ({exc}); "
                "define the payload type at module level, or pass payload= to on_job"
            ) from None
    origin = typing.get_origin(annotation) or annotation
    if origin not in (Job, SyncJob):
        return None, None
    args = typing.get_args(annotation)
    return (args[0] if args else None), origin


_NAMES_A_JOB = re.compile(r"\s*(?:[\w.]+\.)?(?:Sync)?Job\b")
_BARE_JOB = re.compile(r"\s*(?:[\w.]+\.)?(Sync)?Job\s*$")
