"""Registered job handlers: the function, its options, and its payload type.

Everything about a handler that can be decided once is decided at registration: whether
it is ``async def``, that it takes the job it will be given (one ``Job[Model]`` for an
``async def``, one ``SyncJob[Model]`` for a ``def``), which payload type it declares and
the pydantic ``TypeAdapter`` that validates it, and its options (``options.resolve``)
over the app's.

The same rules are types for ``mypy --strict`` (``Register``, the type of
``@app.on_job(...)``): a handler is ``Callable[[Job[P]], Awaitable[R]]`` or
``Callable[[SyncJob[P]], R]``, where ``R`` is a ``JobResult``. Types cannot say "anything
``pydantic_core.to_jsonable_python`` takes", so ``JobResult`` names the usual ones; what
they cannot check (a list of sockets, a dict with tuple keys) fails the job when it
completes, with the serialisation error.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
import types
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigurationError
from .._sdk.settings import is_async_function

if TYPE_CHECKING:
    import datetime
    import decimal
    import enum
    import pathlib
    import uuid
    from collections.abc import Awaitable, Mapping, Sequence, Set
    from typing import Protocol, TypeAlias, TypeVar

    from _typeshed import DataclassInstance
    from pydantic import BaseModel, TypeAdapter

    from .job import Job, SyncJob
    from .options import JobOptions

    JobResult: TypeAlias = (
        None | bool | int | float | str | bytes | Sequence[Any] | Set[Any] | Mapping[Any, Any]
        | datetime.date | datetime.time | datetime.timedelta | decimal.Decimal | uuid.UUID
        | enum.Enum | pathlib.PurePath | BaseModel | DataclassInstance
    )  # fmt: skip
    """What a handler may return, to complete its job with (as JSON): JSON's own types,
    containers of anything, pydantic models, dataclasses, and what pydantic writes as a
    string (dates, times, UUIDs, decimals, enums, paths). Not a coroutine: an ``async
    def`` handler is ``Job``'s, a ``def`` one returning an awaitable is a mistake."""

    JobHandler = TypeVar(
        "JobHandler",
        bound=Callable[[Job[Any]], Awaitable[JobResult]] | Callable[[SyncJob[Any]], JobResult],
    )
    """``async def f(job: Job[Model]) -> R`` or ``def f(job: SyncJob[Model]) -> R``, ``R``
    a ``JobResult``; a bare ``Job``/``SyncJob`` is ``Job[Any]``: the payload as parsed JSON."""

    class Register(Protocol):
        """What ``@app.on_job(name)`` is: takes a ``JobHandler``, returns it unchanged."""

        def __call__(self, func: JobHandler, /) -> JobHandler: ...


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
    """Inspect ``func`` once: sync or async, that it takes the job, and its payload type."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError("on_job needs a job name, e.g. @app.on_job('send-email')")
    if not callable(func):
        raise ConfigurationError(f"on_job({name!r}) must decorate a function")
    is_async = is_async_function(func)
    declared = _declared(name, func, is_async, strict=payload is UNSET)
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


def _declared(name: str, func: Callable[..., Any], is_async: bool, *, strict: bool) -> Any:
    """The payload type of ``job: Job[Model]`` (or ``SyncJob[Model]``), or None.

    Raises ``ConfigurationError`` for a function that cannot take the job: no parameter,
    a second one without a default, or a first one annotated with something the job is
    not (``int``; ``Job`` on a ``def``). An annotation that names ``Job[...]`` or
    ``SyncJob[...]`` but cannot be resolved is an error too: silently running without
    validation would be worse. A bare ``Job`` needs no resolving: it has no payload type.
    """
    from .._sdk.view import JobView
    from .job import Job, SyncJob

    target = func
    while isinstance(target, functools.partial):
        target = target.func
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None  # a builtin or the like: nothing to read
    kind = "async def" if is_async else "def"
    expected = Job if is_async else SyncJob
    shown = _shown(kind, target)
    _check_parameters(name, shown, expected.__name__, params)
    if params[0].kind is inspect.Parameter.VAR_POSITIONAL:
        return None
    annotation = params[0].annotation
    if annotation is inspect.Parameter.empty:
        return None
    if isinstance(annotation, str):
        try:
            scope = dict(getattr(target, "__globals__", {}))
            with contextlib.suppress(TypeError):
                scope.update(inspect.getclosurevars(target).nonlocals)
            annotation = eval(annotation, scope)  # what typing.get_type_hints does
        except Exception as exc:
            named = _NAMES_A_JOB.match(annotation)
            if named is None:
                return None  # another annotation we cannot read: not ours to judge
            if bool(named.group(1)) == is_async:  # SyncJob[...] on an async def, or Job on a def
                _refuse(name, shown, expected, SyncJob if named.group(1) else Job)
            if not strict or re.match(_BARE_JOB, annotation):  # no payload type to lose
                return None
            raise ConfigurationError(
                f"{name}: cannot resolve the annotation {params[0].annotation!r} ({exc}); "
                "define the payload type at module level, or pass payload= to on_job"
            ) from None
    if not _takes(annotation, expected):
        _refuse(name, shown, expected, annotation)
    origin = typing.get_origin(annotation) or annotation
    if isinstance(origin, type) and issubclass(origin, JobView):
        args = typing.get_args(annotation)
        return args[0] if args else None
    return None


def _shown(kind: str, target: Any) -> str:
    """``async def wrong (app.jobs, line 12)``: what the author finds the handler by."""
    shown = f"{kind} {getattr(target, '__name__', None) or repr(target)}"
    code = getattr(target, "__code__", None)
    if code is not None:
        shown += f" ({getattr(target, '__module__', None) or '?'}, line {code.co_firstlineno})"
    return shown


def _check_parameters(name: str, shown: str, job: str, params: list[inspect.Parameter]) -> None:
    """A handler is called with the job alone, as its one positional argument."""
    usage = f"{'async def' if job == 'Job' else 'def'} handler(job: {job}[Model])"
    if not params or params[0].kind not in _POSITIONAL:
        raise ConfigurationError(
            f"{name}: the handler {shown} must take the job as its first positional "
            f"parameter: {usage}"
        )
    extra = [
        p.name
        for p in params[1:]
        if p.default is inspect.Parameter.empty and p.kind not in _VARIADIC
    ]
    if extra:
        raise ConfigurationError(
            f"{name}: the handler {shown} is called with the job alone, but also needs "
            f"{', '.join(extra)}: {usage}"
        )


def _takes(annotation: Any, expected: type) -> bool:
    """Whether a parameter annotated ``annotation`` accepts an ``expected`` job. What
    cannot be judged (a Protocol, a TypeVar, ``Annotated``...) is given the benefit."""
    if annotation is Any or annotation is object:
        return True
    origin = typing.get_origin(annotation) or annotation
    if origin is typing.Union or origin is types.UnionType:
        return any(_takes(arg, expected) for arg in typing.get_args(annotation))
    if not isinstance(origin, type):
        return True
    try:
        return issubclass(expected, origin)
    except TypeError:  # a Protocol that is not runtime-checkable
        return True


def _refuse(name: str, shown: str, expected: type, annotation: Any) -> typing.NoReturn:
    given = annotation.__name__ if isinstance(annotation, type) else repr(annotation)
    given = re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", given)  # Job[Resize], not a.b.Job[c.Resize]
    origin = typing.get_origin(annotation) or annotation
    kind = "an async def" if expected.__name__ == "Job" else "a def"
    if isinstance(origin, type) and origin.__name__ in ("Job", "SyncJob"):
        raise ConfigurationError(
            f"{name}: the handler {shown} is annotated {given}, but {kind} handler "
            f"receives {expected.__name__}, not {origin.__name__}"
        )
    raise ConfigurationError(
        f"{name}: the handler {shown} annotates its job as {given}; {kind} handler "
        f"receives {expected.__name__} ({expected.__name__}[Model] for a typed payload)"
    )


_POSITIONAL = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.VAR_POSITIONAL,
)
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
_NAMES_A_JOB = re.compile(r"\s*(?:[\w.]+\.)?(Sync)?Job\b")
_BARE_JOB = r"\s*(?:[\w.]+\.)?(Sync)?Job\s*$"  # compiled (and cached by `re`) if ever needed
