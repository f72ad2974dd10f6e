"""Request bodies: pydantic models at the trust boundary, and their 400 messages.

Field names are the wire's camelCase. Models are strict (``"3"`` is not a number) and
forbid unknown fields, so a typo such as ``max_retries`` is reported rather than ignored;
only the bodies the service ignores (claim, ack, keepalive) take any object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from ._errors import ApiError, bad_request
from ._ids import TimestampRangeError, parse_ts
from ._messages import problems
from ._outbound import check_headers, check_url

__all__ = [
    "LEVELS",
    "CompleteIn",
    "FailIn",
    "JobSpecIn",
    "KillIn",
    "LogLineIn",
    "PollIn",
    "ProgressIn",
    "PushSettingsIn",
    "WORKER_BODIES",
    "outbound_headers",
    "outbound_url",
    "timestamp",
    "validate",
    "validate_object",
]

LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")

NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Percent = Annotated[int | float, Field(ge=0, le=100)]
Names = NonEmpty | Annotated[list[NonEmpty], Field(min_length=1, max_length=100)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class JobSpecIn(_In):
    """One job to create."""

    name: NonEmpty
    payload: Any = None
    maxRetries: Annotated[int, Field(ge=0, le=25)] = 3
    timeoutSeconds: Annotated[int, Field(ge=1, le=86400)] = 300
    scheduledFor: str | None = Field(None, description="ISO-8601; must be in the future")
    callbackUrl: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")] | None = None
    callbackHeaders: dict[str, str] | None = None


class PollIn(_In):
    """Claim up to ``count`` pending jobs; the name filter is strict."""

    count: Annotated[int, Field(ge=1, le=50)] = 1
    types: Names | None = None
    type: Names | None = None
    names: Names | None = None
    name: Names | None = None

    def filter(self) -> list[str] | None:
        for value in (self.types, self.type, self.names, self.name):
            if value is not None:
                return [value] if isinstance(value, str) else value
        return None


class SubProgressIn(_In):
    percent: Percent
    message: str | None = None


class ProgressIn(_In):
    percent: Percent
    message: Annotated[str, StringConstraints(min_length=1)]
    subProgress: dict[str, SubProgressIn] | None = None


class CompleteIn(_In):
    result: Any = None


class FailIn(_In):
    error: str


class KillIn(_In):
    reason: str | None = None


class PushSettingsIn(_In):
    """Local-server admin call: where ``job.pending`` pushes go. Empty URL: push off."""

    url: Annotated[str, StringConstraints(pattern=r"^(https?://\S+)?$")] | None = None
    headers: dict[str, str] = {}
    jobNames: list[NonEmpty] | None = None


class LogLineIn(_In):
    level: Literal["trace", "debug", "info", "warn", "error", "fatal"]
    message: str
    ts: str | None = None
    source: Annotated[str, StringConstraints(max_length=255)] | None = None
    metadata: dict[str, Any] | None = None


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: object, where: str = "") -> M:
    """``model`` from parsed JSON, or a 400 naming every field that is wrong."""
    if not isinstance(data, dict):
        raise bad_request(f"{where or 'body'}: must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _as_api_error(exc, model, where) from None


def _as_api_error(exc: ValidationError, model: type[BaseModel], where: str) -> ApiError:
    reports = []
    for loc, message in problems(exc, model):
        field = f"{where}.{loc}" if where and loc else (where or loc or "body")
        reports.append(f"{field}: {message}")
    return bad_request("; ".join(reports))


def validate_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise bad_request("body: must be a JSON object")
    return data


def _empty(data: Any) -> None:
    """claim, ack and keepalive: the service documents their bodies as ignored, so fields
    there are ignored too; no body or any JSON object is fine (not JSON, or not an object,
    is still a 400)."""
    validate_object(data)


def _progress(data: Any) -> dict[str, Any]:
    """The stored shape: every key present, ``subProgress`` null when not given."""
    spec = validate(ProgressIn, data)
    stages = spec.subProgress
    return {
        "percent": spec.percent,
        "message": spec.message,
        "subProgress": None
        if stages is None
        else {name: stage.model_dump(exclude_none=True) for name, stage in stages.items()},
    }


# What a worker call's body holds -> the engine's argument (400 when it does not fit).
WORKER_BODIES: dict[str, Callable[[Any], Any]] = {
    "nothing": _empty,
    "progress": _progress,
    "object": validate_object,
    "complete": lambda data: validate(CompleteIn, data).result,
    "fail": lambda data: validate(FailIn, data).error,
    "kill": lambda data: validate(KillIn, data).reason,
}


def timestamp(value: str, field: str) -> int:
    """Epoch milliseconds of an ISO-8601 ``value``, or a 400 naming ``field``."""
    try:
        return parse_ts(value)
    except TimestampRangeError:
        raise bad_request(f"{field}: must be between the years 1970 and 9999 (UTC)") from None
    except ValueError:
        raise bad_request(f"{field}: must be an ISO-8601 timestamp") from None


def outbound_url(url: str, field: str) -> None:
    """400 naming ``field`` unless a push or callback can be sent to ``url``."""
    if problem := check_url(url):
        raise bad_request(f"{field}: {problem}")


def outbound_headers(headers: dict[str, str], field: str) -> None:
    """400 naming ``field.<name>`` unless every header can be sent (values never quoted)."""
    if bad := check_headers(headers):
        name, problem = bad
        raise bad_request(f"{field}.{name}: {problem}" if name else f"{field}: {problem}")
