"""Registered job handlers: the function, its options, and its payload type.

Everything about a handler that can be decided once is decided at registration: whether
it is ``async def``, which payload type it declares (``Job[Model]``) and the pydantic
``TypeAdapter`` that validates it, and its options (``options.resolve``) over the app's.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigurationError
from .._sdk.settings import is_async_function

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from .options import JobOptions

__all__ = ["UNSET", "Handler", "is_async_function", "make_handler"]


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""An argument not given (``payload=``: the annotation says the type; ``push_secret=``:
``EMIT_PUSH_SECRET``)."""


class Handler:
    """One registered function."""

    # A plain class: a dataclass's generated methods would be compiled at every cold start.
    __slots__ = ("func", "is_async", "name", "options", "payload")

    def __init__(
        self,
        name: str,
        func: Callable[..., Any],
        is_async: bool,
        payload: TypeAdapter[Any] | None,
        options: JobOptions,
    ) -> None:
        self.name = name
        self.func = func
        self.is_async = is_async
        self.payload = payload
        """Validates the payload into the declared type; None: the parsed JSON as is."""
        self.options = options
        """Complete: every job option, the app's with this handler's over them."""

    def __repr__(self) -> str:
        return f"Handler(name={self.name!r}, func={self.func!r}, is_async={self.is_async!r})"


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


def _declared(name: str, func: Callable[..., Any], *, strict: bool) -> tuple[Any, type | None]:
    """The payload type of ``job: Job[Model]`` (or ``SyncJob[Model]``), and that class.

    Only the first parameter's annotation is read. One that names ``Job[...]`` or
    ``SyncJob[...]`` but cannot be resolved is an error: silently running without
    validation would be worse. A bare ``Job`` needs no resolving: it has no payload type.
    """
    from .job import Job, SyncJob

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
            if bare := re.match(_BARE_JOB, annotation):  # no payload type to lose
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
_BARE_JOB = r"\s*(?:[\w.]+\.)?(Sync)?Job\s*$"  # compiled (and cached by `re`) if ever needed
