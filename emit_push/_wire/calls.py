"""One API call as a value: :class:`Call` (what to send, how to read the answer, how it
may be retried) and the small pieces every endpoint builds one from. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar
from urllib.parse import quote

import pydantic_core

from .._exceptions import InvalidInputError, escape_surrogates

if TYPE_CHECKING:
    import httpx
    from pydantic import BaseModel

    from .models import JobDetails
    from .retry import RetryMode

__all__ = ["Call", "Confirm", "Effect", "encode_json", "jsonable", "without_surrogates"]

T = TypeVar("T", covariant=True)
R = TypeVar("R")

Effect = Literal["ack", "alive", "completed", "failed", "killed"]
"""What a worker call does to its job when it succeeds (``alive``: re-arms the service's
execution timer, as progress, checkpoint and keepalive do)."""


# Plain classes, not dataclasses: a dataclass's generated methods are compiled when its
# module is imported, and a Lambda's first push imports this one (benchmarks/cold_start.py).
# Both are values: made once by an endpoint, then only read.


class Confirm(Generic[T]):
    """How to tell whether an earlier attempt of a call did land: read the job.

    ``check`` gets the job as read back and returns the call's result if the job shows
    the call's effect, else None. ``attempt_number`` is the attempt the call was made
    for, when known: a job that has moved on to another attempt is not sent it again.
    """

    __slots__ = ("attempt_number", "check", "job_id")

    job_id: str
    check: Callable[[JobDetails], T | None]
    attempt_number: int | None

    def __init__(
        self,
        job_id: str,
        check: Callable[[JobDetails], T | None],
        attempt_number: int | None = None,
    ) -> None:
        self.job_id = job_id
        self.check = check
        self.attempt_number = attempt_number

    def __repr__(self) -> str:
        return f"Confirm(job_id={self.job_id!r}, attempt_number={self.attempt_number!r})"

    def moved_on(self, job: JobDetails) -> bool:
        """Whether ``job`` is on another attempt than the one the call was made for."""
        return not _attempt_is(job, self.attempt_number)


class Call(Generic[T]):
    """One API call: what to send, how to read the answer, how it may be retried.

    ``worker_job`` names the job of a worker call: a 409 without a code is then checked
    against the job's status, so that a kill is reported as ``JobKilledError`` even by a
    service that does not say ``job_killed``. ``pending_job`` names the job of a claim:
    after a failure that leaves its fate unknown, the claim is sent again if the job is
    still pending (a claim that landed would have made it ``delivered``).
    """

    __slots__ = (
        "confirm", "content", "effect", "headers", "method", "params", "parse",
        "path", "pending_job", "retry", "worker_job",
    )  # fmt: skip

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    content: bytes | None
    headers: Mapping[str, str] | None
    params: Mapping[str, str | int] | None
    retry: RetryMode
    confirm: Confirm[T] | None
    worker_job: str | None
    pending_job: str | None
    effect: Effect | None

    def __init__(
        self,
        method: str,
        path: str,
        parse: Callable[[httpx.Response], T],
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
        retry: RetryMode = "idempotent",
        confirm: Confirm[T] | None = None,
        worker_job: str | None = None,
        pending_job: str | None = None,
        effect: Effect | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.parse = parse
        self.content = content
        self.headers = headers
        self.params = params
        self.retry = retry
        self.confirm = confirm
        self.worker_job = worker_job
        self.pending_job = pending_job
        self.effect = effect

    def __repr__(self) -> str:
        return f"Call({self.method!r}, {self.path!r}, retry={self.retry!r})"


def encode_json(value: Any) -> bytes:
    """JSON bytes for a request body; pydantic models are written with their aliases.

    Text that UTF-8 cannot hold (lone surrogates: a file name from ``os.fsdecode``) is
    written out as plain text, in keys and values alike: ``report-\\xff.csv``. Only a
    value that fails to encode is searched for it.
    """
    try:
        return _written_out(pydantic_core.to_json, value)
    except ValueError as error:  # PydanticSerializationError and UnicodeEncodeError are
        raise InvalidInputError(f"cannot send as JSON: {error}") from error


def jsonable(value: Any) -> Any:
    """``pydantic_core.to_jsonable_python(value)`` that does not fail on a lone surrogate
    (in a key, where that function encodes; strings are left for :func:`encode_json`).

    Raises ``PydanticSerializationError`` for a value JSON cannot hold.
    """
    try:
        return _written_out(pydantic_core.to_jsonable_python, value)
    except pydantic_core.PydanticSerializationError:
        raise
    except ValueError as error:
        raise pydantic_core.PydanticSerializationError(
            f"cannot encode as UTF-8: {error}"
        ) from error


def _written_out(convert: Callable[[Any], R], value: Any) -> R:
    """``convert(value)``; failing on a lone surrogate, ``convert`` of a copy with them
    written out (the fast path walks nothing). Raises the error that says what is wrong."""
    try:
        return convert(value)
    except (pydantic_core.PydanticSerializationError, UnicodeEncodeError) as exc:
        error: Exception = exc
    if _surrogates_in(error):
        try:
            return convert(without_surrogates(value))
        except (pydantic_core.PydanticSerializationError, ValueError) as exc:
            error = exc  # something else is wrong with it too: say that
        except RecursionError:
            pass  # a cycle
    raise error


def without_surrogates(value: Any) -> Any:
    """A copy of ``value`` whose strings (keys too) have their lone surrogates written
    out (``escape_surrogates``); containers, pydantic models and dataclasses are walked,
    anything else is kept as it is. Raises ``RecursionError`` on a cycle."""
    if isinstance(value, str):
        return escape_surrogates(value)
    if isinstance(value, Mapping):
        return {without_surrogates(key): without_surrogates(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [without_surrogates(item) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    from pydantic import BaseModel  # the slow path only: a value failed to encode

    if isinstance(value, BaseModel):  # as to_json writes it: by alias
        return without_surrogates(value.model_dump(by_alias=True))
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return {f.name: without_surrogates(getattr(value, f.name)) for f in fields}
    return value


def _surrogates_in(exc: Exception) -> bool:
    """Whether encoding failed on a lone surrogate (UTF-8's words for it)."""
    return isinstance(exc, UnicodeEncodeError) or "surrogates not allowed" in str(exc)


def _job_path(job_id: str, action: str = "") -> str:
    if not isinstance(job_id, str) or not job_id:
        raise InvalidInputError(f"job_id must be a non-empty string, got {job_id!r}")
    return f"/jobs/{quote(job_id, safe='')}" + (f"/{action}" if action else "")


def _space_path(space_id: str, rest: str = "") -> str:
    return f"/spaces/{quote(space_id, safe='')}/jobs{rest}"


def _model(model: type[BaseModel]) -> Callable[[httpx.Response], Any]:
    return lambda response: model.model_validate_json(response.content)


def _json(response: httpx.Response) -> Any:
    return pydantic_core.from_json(response.content) if response.content.strip() else None


def _unwrap(data: Any, key: str) -> Any:
    """``data[key]`` when the answer wraps its value in an object, else ``data``."""
    return data[key] if isinstance(data, dict) and key in data else data


def _filled(data: Any, key: str, value: str) -> dict[str, Any]:
    """``data`` as an object whose ``key`` is ``value`` unless the answer gave one."""
    filled = dict(data) if isinstance(data, dict) else {}
    if filled.get(key) is None:
        filled[key] = value
    return filled


def _attempt_is(job: JobDetails, attempt: int | None) -> bool:
    return attempt is None or job.attempt_number == attempt
