"""The push protocol without I/O: check a ``job.pending`` push, and say how to answer it.

:func:`check_push` turns the raw body and headers of a request into a :class:`Push` or a
:class:`PushResult` that refuses it; :func:`claim_answer` says what a push whose claim
failed is answered; :meth:`PushResult.http` turns any result into the status, headers and
body of the answer. All are pure: adapters and tests call them without an event loop, and
nothing here talks to the service.

The push is hand-checked rather than parsed by a pydantic model: it has five fields, the
messages name exactly what is wrong, and no schema is built at cold start.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from .._exceptions import (
    APIConnectionError,
    ConflictError,
    EmitError,
    NotFoundError,
    RateLimitError,
    ServerError,
    escape_surrogates,
)
from .auth import MAX_PUSH_BYTES, PushAuth

__all__ = [
    "MAX_PUSH_BYTES",
    "Push",
    "PushAuth",
    "PushResult",
    "PushStatus",
    "check_push",
    "claim_answer",
]

API_SUFFIX = "/api/v1"

PushStatus = Literal[
    "completed", "failed", "killed", "skipped", "ignored", "accepted", "running", "delivered"
]
"""How a push ended. ``accepted``: queued to run after the answer (background mode).
With ``auto_complete`` off, a function that returned without settling its job leaves it
to be completed later: ``running`` (acknowledged by ``auto_ack``), or ``delivered`` when
``auto_ack`` is off too (the function acknowledges it itself, if it did)."""

# A job id goes into URL paths: at most 128 of these, nothing else. Told by `str.strip`,
# which leaves nothing of a string made only of them: no regex to compile at a cold start.
_JOB_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


class Push(NamedTuple):
    """A push that passed every check: the job to claim, and what it said about it.

    (A named tuple: a dataclass's generated methods would be compiled at a Lambda's first
    push.)
    """

    job_id: str
    name: str | None = None
    attempt_number: int | None = None


_FIELDS = (
    "status",
    "job_id",
    "http_status",
    "error",
    "code",
    "name",
    "attempt_number",
    "reason",
    "headers",
)


class PushResult:
    """What handling one push came to, and the HTTP answer that says so.

    ``status`` is None for a refused push (``http_status`` 4xx, or 503 when the service
    could not be reached to claim); ``error`` then says what was wrong, ``code`` in a word.
    For a ``failed`` job ``error`` is the error the job was failed with; ``reason`` says
    why a job was skipped or ignored, or ended as it did (``deadline exceeded``).

    Immutable, compared by its fields. (A plain class: a dataclass's generated methods
    would be compiled at a Lambda's cold start.)
    """

    __slots__ = _FIELDS
    status: PushStatus | None
    job_id: str | None
    http_status: int
    error: str | None
    code: str | None
    name: str | None
    attempt_number: int | None
    reason: str | None
    headers: Mapping[str, str]

    def __init__(
        self,
        status: PushStatus | None,
        job_id: str | None = None,
        http_status: int = 200,
        error: str | None = None,
        code: str | None = None,
        name: str | None = None,
        attempt_number: int | None = None,
        reason: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        values = (status, job_id, http_status, error, code, name, attempt_number, reason)
        for key, value in zip(_FIELDS, (*values, headers or {}), strict=True):
            object.__setattr__(self, key, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"PushResult is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"PushResult is immutable: cannot delete {name!r}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, key) for key in _FIELDS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PushResult):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values()[:-1])  # not the headers: a mapping does not hash

    def __repr__(self) -> str:
        shown = ", ".join(f"{key}={getattr(self, key)!r}" for key in _FIELDS)
        return f"PushResult({shown})"

    @classmethod
    def refused(cls, http_status: int, code: str, error: str, **extra: Any) -> PushResult:
        return cls(None, http_status=http_status, code=code, error=error, **extra)

    def body(self) -> dict[str, Any]:
        """The JSON answer: the contract's error shape when refused, else the outcome."""
        if self.status is None:
            return {"error": self.error, "code": self.code}
        body: dict[str, Any] = {"status": self.status, "jobId": self.job_id}
        for key, value in (
            ("name", self.name),
            ("attemptNumber", self.attempt_number),
            ("reason", self.reason),
            ("error", self.error),
        ):
            if value is not None:
                body[key] = value
        return body

    def http(self) -> tuple[int, list[tuple[str, str]], bytes]:
        """Status, headers and body bytes of the answer.

        Text that UTF-8 cannot hold (a lone surrogate in a push's ``name``, say) is
        written out as plain text (``escape_surrogates``): the answer is never an error.
        """
        body = self.body()
        try:
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        except UnicodeEncodeError:
            body = {k: escape_surrogates(v) if isinstance(v, str) else v for k, v in body.items()}
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        headers = [("content-type", "application/json"), *self.headers.items()]
        return self.http_status, headers, content


def check_push(
    body: bytes,
    headers: Mapping[str, str],
    *,
    auth: PushAuth,
    space_id: str | None,
    max_bytes: int = MAX_PUSH_BYTES,
) -> Push | PushResult:
    """Authenticate and validate a push; ``headers`` must have lowercase names.

    Returns the :class:`Push` to act on, or the :class:`PushResult` refusing it: 401 for a
    missing or wrong secret (checked first, so strangers learn nothing else), 413 for an
    oversized body, 400 for a malformed one, 403 for another space's push.
    """
    if not auth.accepts(headers):
        return PushResult.refused(
            401,
            "unauthorized",
            f"missing or wrong push secret in the {auth.header} header",
            headers={"www-authenticate": "Bearer"} if auth.header == "authorization" else {},
        )
    if len(body) > max_bytes:
        return PushResult.refused(413, "payload_too_large", f"a push is at most {max_bytes} bytes")
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return _bad("body is not valid JSON")
    if not isinstance(data, dict):
        return _bad("body must be a JSON object")
    job_id = data.get("jobId")
    if not isinstance(job_id, str) or not job_id:
        return _bad("jobId: a non-empty string is required")
    if len(job_id) > 128 or job_id.strip(_JOB_ID_CHARS):
        return _bad("jobId: at most 128 characters of A-Z, a-z, 0-9, '_' and '-'")
    kind = data.get("type")
    if kind is not None and kind != "job.pending":
        return _bad(f"type: expected 'job.pending', got {_shown(kind)}")
    space = data.get("spaceId")
    if space is not None and space_id is not None and space != space_id:
        return PushResult.refused(403, "wrong_space", "spaceId: not this endpoint's space")
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        return _bad("name: must be a non-empty string")
    attempt = data.get("attemptNumber")
    if not isinstance(attempt, int) or isinstance(attempt, bool):
        attempt = None
    return Push(job_id, name, attempt)


def claim_answer(
    job_id: str, name: str | None, error: EmitError, *, no_api_at: str | None = None
) -> PushResult:
    """The answer to a push whose claim failed with ``error``.

    Lost the race or an unknown job: ``skipped`` (a duplicate costs one claim and never
    runs twice). The service out of reach: 503, so that the push is sent again. Any other
    refusal (a key without the worker scope, say): 500, with the service's words. A 404
    from a base URL where the API is not (``no_api_at``: the caller found every path
    unknown there) is a misconfiguration: 500, with the fix.
    """
    if isinstance(error, ConflictError):
        return PushResult("skipped", job_id, name=name, reason="already claimed")
    if isinstance(error, NotFoundError):
        if no_api_at is None:
            return PushResult("skipped", job_id, name=name, reason="no such job")
        message = (
            f"emit.run's API is not at {no_api_at} (every path answers 404): check that"
            f" EMIT_BASE_URL ends in {API_SUFFIX}"
        )
        return PushResult.refused(500, "no_api_here", message, job_id=job_id)
    if isinstance(error, APIConnectionError | ServerError | RateLimitError):
        message = f"emit.run could not be reached to claim the job: {error}"
        return PushResult.refused(503, "service_unavailable", message, job_id=job_id)
    message = f"emit.run refused the claim (check the worker's key): {error}"
    return PushResult.refused(500, "claim_refused", message, job_id=job_id)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _bad(message: str) -> PushResult:
    return PushResult.refused(400, "invalid_push", message)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."
