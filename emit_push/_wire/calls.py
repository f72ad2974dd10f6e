"""One API call as a value: :class:`Call` (what to send, how to read the answer, how it
may be retried) and the small pieces every endpoint builds one from. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar
from urllib.parse import quote

import pydantic_core

from .._exceptions import InvalidInputError

if TYPE_CHECKING:
    import httpx
    from pydantic import BaseModel

    from .models import JobDetails
    from .retry import RetryMode

__all__ = ["Call", "Confirm", "Effect", "encode_json"]

T = TypeVar("T", covariant=True)

Effect = Literal["ack", "completed", "failed", "killed"]
"""What a worker call does to its job when it succeeds."""


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
    """JSON bytes for a request body; pydantic models are written with their aliases."""
    try:
        return pydantic_core.to_json(value)
    except pydantic_core.PydanticSerializationError as exc:
        raise InvalidInputError(f"cannot send as JSON: {exc}") from exc


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
