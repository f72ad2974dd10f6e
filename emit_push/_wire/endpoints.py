"""Every endpoint of the contract, defined once, without I/O.

Each function returns a :class:`Call`: the request to send (method, path, body), how to
read a successful answer, and how it may be retried. The sync and async clients only
drive calls (``_sdk.transport``); neither knows any endpoint.

The wire models are imported by the functions that build or read them, not with this
module: a push whose claim is refused (404, 409) is answered without building one
pydantic model class (they cost a Lambda's first push milliseconds; see
``benchmarks/cold_start.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

import pydantic_core

from .._exceptions import InvalidInputError, error_message
from .calls import (
    Call,
    Confirm,
    Effect,
    _attempt_is,
    _filled,
    _job_path,
    _json,
    _model,
    _space_path,
    _unwrap,
    encode_json,
)

if TYPE_CHECKING:
    import httpx
    from pydantic import TypeAdapter

    from .models import (
        JobDescriptor,
        JobDetails,
        JobProgress,
        JobRef,
        JobState,
        LogEntry,
        LogPage,
        LogsAccepted,
        SpecInput,
    )
    from .retry import RetryMode

__all__ = [
    "Call",
    "Confirm",
    "ack",
    "append_logs",
    "checkpoint",
    "claim",
    "complete",
    "create",
    "encode_json",
    "event",
    "fail",
    "get",
    "get_progress",
    "keepalive",
    "kill",
    "list_jobs",
    "logs",
    "ndjson_body",
    "poll",
    "progress",
]

T = TypeVar("T", covariant=True)

_JSON = {"content-type": "application/json"}


@functools.cache
def _details_list() -> TypeAdapter[list[JobDetails]]:
    from pydantic import TypeAdapter

    from .models import JobDetails

    return TypeAdapter(list[JobDetails])  # built on first use: cheaper cold starts


# -- producer and read side ----------------------------------------------------------


def _spec(spec: SpecInput) -> dict[str, Any]:
    from .models import JobSpec

    if not isinstance(spec, JobSpec | Mapping):
        raise InvalidInputError(f"a job spec is a JobSpec or a mapping, got {type(spec)!r}")
    try:
        model = spec if isinstance(spec, JobSpec) else JobSpec.model_validate(spec)
        return model.to_wire()
    except pydantic_core.ValidationError as exc:
        raise InvalidInputError(f"invalid job spec: {exc}") from exc
    except pydantic_core.PydanticSerializationError as exc:
        raise InvalidInputError(f"cannot send as JSON: {exc}") from exc


@overload
def create(space_id: str, spec: SpecInput) -> Call[JobRef]: ...
@overload
def create(space_id: str, spec: Sequence[SpecInput]) -> Call[list[JobRef]]: ...
def create(space_id: str, spec: SpecInput | Sequence[SpecInput]) -> Call[Any]:
    """``POST /spaces/:spaceId/jobs``: one spec gives one ref, a list gives refs in order."""
    from .models import JobRef, JobSpec

    specs: list[SpecInput]
    if isinstance(spec, JobSpec | Mapping):
        bulk, specs = False, [spec]
    else:
        bulk, specs = True, list(spec)
    if bulk and not specs:
        raise InvalidInputError("create() needs at least one job spec")
    wire = [_spec(s) for s in specs]

    def parse(response: httpx.Response) -> JobRef | list[JobRef]:
        data = _unwrap(_unwrap(_json(response), "jobs"), "job")
        items = data if isinstance(data, list) else [data]
        refs = [JobRef.model_validate(_filled(item, "spaceId", space_id)) for item in items]
        return refs if bulk else refs[0]

    return Call(
        "POST", _space_path(space_id), parse, encode_json(wire if bulk else wire[0]), _JSON,
        retry="unprocessed",
    )  # fmt: skip


def get(job_id: str) -> Call[JobDetails]:
    """``GET /jobs/:jobId``: the job and its event history."""
    from .models import JobDetails

    return Call("GET", _job_path(job_id), _model(JobDetails))


def list_jobs(
    space_id: str, status: str | None, limit: int | None, offset: int | None
) -> Call[list[JobDetails]]:
    """``GET /spaces/:spaceId/jobs``: newest first."""
    params = {"status": status, "limit": limit, "offset": offset}
    query = {k: v for k, v in params.items() if v is not None}
    return Call(
        "GET",
        _space_path(space_id),
        lambda r: _details_list().validate_python(_unwrap(_json(r), "jobs")),
        params=query,
    )


# What an answer of an open shape must hold to be read at all: without one of these it
# is not the answer asked for, and reading it as "no progress" or "no logs" would hide that.
_PROGRESS_KEYS = frozenset({"progress", "percent", "status", "jobId", "job_id"})
_LOG_KEYS = frozenset({"logs", "lines"})


def get_progress(job_id: str) -> Call[JobProgress]:
    """``GET /jobs/:jobId/progress``; the answer's ``jobId`` may be left out.

    The report reads nested (``{"progress": {...}}``) or flat (``{"percent", "message"}``);
    an answer with neither, nor the job's ``status``, is unreadable (``ValueError``: the
    client raises ``UnexpectedResponseError``).
    """
    from .models import JobProgress

    def parse(response: httpx.Response) -> JobProgress:
        data = _json(response)
        if not isinstance(data, dict) or not _PROGRESS_KEYS & data.keys():
            raise ValueError(f"a job's progress is an object with 'progress', got {_kind(data)}")
        return JobProgress.model_validate(_filled(data, "jobId", job_id))

    return Call("GET", _job_path(job_id, "progress"), parse)


def logs(
    job_id: str,
    *,
    after: int | None = None,
    before: int | None = None,
    limit: int | None = None,
    level: str | None = None,
    q: str | None = None,
) -> Call[LogPage]:
    """``GET /jobs/:jobId/logs``: a page of logs, oldest first."""
    params = {"after": after, "before": before, "limit": limit, "level": level, "q": q}
    query = {k: v for k, v in params.items() if v is not None}
    return Call("GET", _job_path(job_id, "logs"), _log_page, params=query)


def _log_page(response: httpx.Response) -> LogPage:
    """A page of logs: under ``logs`` (the contract's shape), ``lines``, or a bare list;
    anything else is unreadable (``ValueError``), not an empty page."""
    from .models import LogPage

    data = _json(response)
    if not isinstance(data, list) and not (isinstance(data, dict) and _LOG_KEYS & data.keys()):
        raise ValueError(f"a page of logs is an object with 'logs', got {_kind(data)}")
    return LogPage.model_validate(data)


def _kind(data: Any) -> str:
    """What an unreadable answer was, in a few words."""
    if isinstance(data, dict):
        keys = ", ".join(repr(key) for key in list(data)[:5]) or "no keys"
        return f"an object with {keys}"
    return "an empty body" if data is None else f"JSON {type(data).__name__}"


# -- worker side ---------------------------------------------------------------------


def _descriptors(data: Any) -> list[JobDescriptor]:
    from .models import JobDescriptor

    data = _unwrap(data, "jobs")
    items = data if isinstance(data, list) else [_unwrap(data, "job")]
    return [JobDescriptor.model_validate(item) for item in items]


def poll(space_id: str, count: int, types: str | Sequence[str] | None) -> Call[list[JobDescriptor]]:
    """``POST /spaces/:spaceId/jobs/poll``: up to ``count`` jobs, now ours."""
    body: dict[str, Any] = {"count": count}
    if types is not None:
        body["types"] = [types] if isinstance(types, str) else list(types)
    return Call(
        "POST", _space_path(space_id, "/poll"), lambda r: _descriptors(_json(r)),
        encode_json(body), _JSON, retry="unprocessed",
    )  # fmt: skip


def claim(job_id: str) -> Call[JobDescriptor]:
    """``POST /jobs/:jobId/claim``: answers a bare descriptor, ``{"job"}`` or ``{"jobs"}``."""

    def parse(response: httpx.Response) -> JobDescriptor:
        found = _descriptors(_json(response))
        if len(found) != 1:
            raise ValueError(f"claim answered {len(found)} jobs")
        return found[0]

    return Call("POST", _job_path(job_id, "claim"), parse, retry="unprocessed", pending_job=job_id)


def _state(job_id: str) -> Callable[[httpx.Response], JobState]:
    def parse(response: httpx.Response) -> JobState:
        from .models import JobState

        # Any 2xx will do: an empty or odd body means "done".
        return JobState.model_validate(_filled(_json(response), "id", job_id))

    return parse


def _accepted(response: httpx.Response) -> LogsAccepted:
    from .models import LogsAccepted

    data = _json(response)  # any 2xx will do
    return LogsAccepted.model_validate(data if isinstance(data, dict) else {})


def _worker_call(
    job_id: str,
    action: str,
    body: Any = None,
    check: Callable[[JobDetails], bool] | None = None,
    *,
    retry: RetryMode | None = None,
    kill_aware: bool = True,
    attempt_number: int | None = None,
    effect: Effect | None = None,
) -> Call[JobState]:
    content = None if body is None else encode_json(body)
    confirm = None
    if check is not None:
        confirm = Confirm(
            job_id, lambda job: _state_of(job) if check(job) else None, attempt_number
        )
    return Call(
        "POST",
        _job_path(job_id, action),
        _state(job_id),
        content,
        _JSON if content is not None else None,
        retry=retry or ("idempotent" if check is None else "confirm"),
        confirm=confirm,
        worker_job=job_id if kill_aware else None,
        effect=effect,
    )


def _state_of(job: JobDetails) -> JobState:
    from .models import JobState

    return JobState(id=job.id, status=job.status, attempt_number=job.attempt_number)


def ack(job_id: str, attempt_number: int | None = None) -> Call[JobState]:
    """``POST /jobs/:jobId/ack``: ``delivered`` → ``running``."""
    return _worker_call(
        job_id,
        "ack",
        check=lambda j: j.status == "running" and _attempt_is(j, attempt_number),
        attempt_number=attempt_number,
        effect="ack",
    )


def keepalive(job_id: str) -> Call[JobState]:
    """``POST /jobs/:jobId/keepalive``: re-arms the execution timer."""
    return _worker_call(job_id, "keepalive", effect="alive")


def progress(
    job_id: str,
    percent: float,
    message: str,
    sub_progress: Mapping[str, Any] | None = None,
) -> Call[JobState]:
    """``POST /jobs/:jobId/progress``."""
    body: dict[str, Any] = {"percent": percent, "message": message}
    if sub_progress is not None:
        body["subProgress"] = sub_progress
    return _worker_call(job_id, "progress", body, effect="alive")


def _object(data: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    from pydantic import BaseModel  # loaded already by any app that has models

    if not isinstance(data, Mapping | BaseModel):
        raise InvalidInputError(f"{what} data must be a JSON object, got {type(data)!r}")
    return data


def checkpoint(job_id: str, data: Mapping[str, Any]) -> Call[JobState]:
    """``POST /jobs/:jobId/checkpoint``: stores ``data`` as the job's checkpoint."""
    return _worker_call(job_id, "checkpoint", _object(data, "checkpoint"), effect="alive")


def event(job_id: str, data: Mapping[str, Any]) -> Call[JobState]:
    """``POST /jobs/:jobId/event``: records a custom event (not re-sent after a lost answer)."""
    return _worker_call(job_id, "event", _object(data, "event"), retry="unprocessed")


def complete(job_id: str, result: Any = None, attempt_number: int | None = None) -> Call[JobState]:
    """``POST /jobs/:jobId/complete``."""
    return _worker_call(
        job_id,
        "complete",
        {"result": result},
        lambda j: j.status == "completed" and _attempt_is(j, attempt_number),
        attempt_number=attempt_number,
        effect="completed",
    )


def fail(
    job_id: str, error: str | BaseException, attempt_number: int | None = None
) -> Call[JobState]:
    """``POST /jobs/:jobId/fail``: the job retries, or is dead when out of retries."""
    message = error_message(error)

    def landed(job: JobDetails) -> bool:
        # The fail shows as a `retried` (attempt + 1) or `dead` (same attempt) event.
        for e in job.events:
            if e.type in {"retried", "dead"} and isinstance(e.data, dict):
                number = None if attempt_number is None else attempt_number + (e.type == "retried")
                if e.data.get("error") == message and (
                    number is None or e.attempt_number == number
                ):
                    return True
        return False

    return _worker_call(
        job_id, "fail", {"error": message}, landed, attempt_number=attempt_number, effect="failed"
    )


def kill(job_id: str, reason: str | None = None) -> Call[JobState]:
    """``POST /jobs/:jobId/kill``: stops the job for good."""
    body = {} if reason is None else {"reason": reason}
    check = lambda j: j.status == "killed"  # noqa: E731
    return _worker_call(job_id, "kill", body, check, kill_aware=False, effect="killed")


def ndjson_body(entries: Iterable[LogEntry | Mapping[str, Any]]) -> bytes:
    """NDJSON for ``append_logs``, one entry a line."""
    from .models import LogEntry

    lines = []
    for entry in entries:
        if not isinstance(entry, LogEntry):
            try:
                entry = LogEntry.model_validate(entry)
            except pydantic_core.ValidationError as exc:
                raise InvalidInputError(f"invalid log entry: {exc}") from exc
        wire = entry.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"seq"})
        lines.append(encode_json(wire))
    return b"\n".join(lines) + b"\n"


def append_logs(job_id: str, body: bytes, *, gzip: bool = True) -> Call[LogsAccepted]:
    """``POST /jobs/:jobId/logs`` with an NDJSON body, gzipped unless told not to.

    Not re-sent after a lost answer (it would store the lines twice); see ``_logs.delivery``.
    """
    headers = {"content-type": "application/x-ndjson"}
    if gzip:
        import gzip as gzip_module  # with the first batch of logs

        body = gzip_module.compress(body, compresslevel=5)
        headers["content-encoding"] = "gzip"
    return Call("POST", _job_path(job_id, "logs"), _accepted, body, headers, retry="unprocessed")
