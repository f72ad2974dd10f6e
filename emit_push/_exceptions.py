"""Every error emit-push raises, in one tree.

```
EmitError
├── ConfigurationError            missing or invalid settings: invalid ones at construction,
│                                 missing ones at the first push, poll or API call
├── MissingExtraError             an extra not installed (also an ImportError; ``_extras``)
├── InvalidInputError             an argument the SDK cannot send (also a ValueError)
├── APIConnectionError            no answer: refused, reset, dropped          retryable
│   └── APITimeoutError           no answer in time                           retryable
├── APIError                      the service answered with an error status
│   ├── BadRequestError           400, 413, 415, 422: the request was invalid
│   ├── AuthenticationError       401: no key, or an unknown one
│   ├── PermissionDeniedError     403: missing scope, or another space's key
│   ├── NotFoundError             404: unknown job
│   ├── ConflictError             409: the call is not allowed in the job's status
│   │   └── JobKilledError        409 ``job_killed``: the job was killed
│   ├── RateLimitError            429                                         retryable
│   ├── ServerError               5xx                                         retryable
│   └── UnexpectedResponseError   a 2xx answer whose body the SDK cannot read
├── RealtimeError                 a realtime stream refused, or its connection lost
│                                 (``retryable`` says whether another attempt may work)
└── DeadlineExceeded              a job call after the run's deadline (the job was failed)
```

API errors carry ``status``, ``code``, ``message`` and ``request_id`` (when the service
sent one), plus the ``method`` and ``url`` of the call; every other error has the first
three as class attributes set to None, so any ``EmitError`` can be asked for them. No
error ever holds the API key: errors keep strings, not the request objects that carried
the key.

Foreign errors (httpx transport errors, pydantic validation errors) are converted here,
in :func:`error_from_response` and :func:`error_from_transport`, and chained with
``raise ... from exc`` by the caller.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # httpx comes with the first request; an app's import needs only the classes
    import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "DeadlineExceeded",
    "EmitError",
    "InvalidInputError",
    "JobKilledError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RealtimeError",
    "ServerError",
    "UnexpectedResponseError",
    "error_from_response",
    "error_from_transport",
    "error_message",
    "escape_surrogates",
]


class EmitError(Exception):
    """Base class of every error the SDK raises.

    ``message`` says what went wrong; ``status``, ``code`` and ``request_id`` are None
    unless the service answered, so ``except EmitError as e: e.status`` works for every
    error.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    retryable: bool = False
    """Whether sending the same request again may succeed."""
    status: int | None = None
    """The HTTP status of the service's answer; None when there was none."""
    code: str | None = None
    """The machine code of the error body (``invalid_state``, ``job_killed``...)."""
    request_id: str | None = None
    """The service's id for the request, when it sent one."""


class ConfigurationError(EmitError):
    """A setting is invalid (raised at construction) or missing (raised when first needed)."""


class InvalidInputError(EmitError, ValueError):
    """Raised before any request when an argument cannot be sent (e.g. not JSON-able)."""


class APIConnectionError(EmitError):
    """Raised when no answer came back: connection refused, reset or dropped.

    ``request_sent`` is False only when the request provably never reached the server
    (the connection could not be opened), so retrying cannot repeat its effect.
    """

    retryable = True

    def __init__(self, message: str, *, method: str, url: str, request_sent: bool = True) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.request_sent = request_sent

    def __str__(self) -> str:
        return f"{self.message} ({self.method} {self.url})"


class APITimeoutError(APIConnectionError):
    """Raised when the answer did not come in time."""


class APIError(EmitError):
    """Raised when the service answers with an error status.

    The class says what kind of error it is; ``status`` is the exact HTTP status,
    ``code`` the machine code of the body (``invalid_state``, ``job_killed``...),
    ``message`` the human one, ``request_id`` the service's id for the request.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        method: str | None = None,
        url: str | None = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.code = code
        self.request_id = request_id
        self.method = method
        self.url = url
        self.body = body
        self.retry_after = retry_after
        """Seconds the service asked us to wait (``Retry-After``), when it said."""

    def __str__(self) -> str:
        head = f"{self.status} {self.code}" if self.code else f"{self.status}"
        text = f"{head}: {self.message}"
        if self.method and self.url:
            text += f" ({self.method} {self.url})"
        if self.request_id:
            text += f" [request id {self.request_id}]"
        return text


class BadRequestError(APIError):
    """400 (and 413, 415, 422): the service refused the request as invalid."""

    status = 400


class AuthenticationError(APIError):
    """401: the API key is missing or unknown."""

    status = 401


class PermissionDeniedError(APIError):
    """403: the key lacks a scope, or belongs to another space."""

    status = 403


class NotFoundError(APIError):
    """404: the job (or endpoint) does not exist."""

    status = 404


class ConflictError(APIError):
    """409: the call is not allowed in the job's current status."""

    status = 409


class JobKilledError(ConflictError):
    """409 ``job_killed``: the job was killed; a worker should stop and send nothing more."""


class RateLimitError(APIError):
    """429: too many requests; ``retry_after`` says how long to wait when known."""

    status = 429
    retryable = True


class ServerError(APIError):
    """5xx: the service failed to answer the request."""

    status = 500
    retryable = True


class UnexpectedResponseError(APIError):
    """A success status whose body is not what the contract describes."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: BadRequestError,
    415: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
}


def error_from_response(response: httpx.Response, method: str, url: str) -> APIError:
    """The error for an error answer, read leniently: JSON ``error``/``message``, or text."""
    body, message, code = _read_body(response)
    status = response.status_code
    kind = _BY_STATUS.get(status) or (ServerError if status >= 500 else APIError)
    if kind is ConflictError and code == "job_killed":
        kind = JobKilledError
    headers = response.headers
    return kind(
        message or response.reason_phrase or f"HTTP {status}",
        status=status,
        code=code,
        request_id=headers.get("x-request-id") or headers.get("request-id"),
        method=method,
        url=url,
        body=body,
        retry_after=parse_retry_after(headers.get("retry-after")),
    )


def error_from_transport(exc: httpx.HTTPError, method: str, url: str) -> APIConnectionError:
    """The error for an httpx failure that left us without an answer."""
    import httpx  # loaded already: it raised ``exc``

    # Only a connection that never opened proves the server did not see the request.
    unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    name = type(exc).__name__
    detail = str(exc) or name
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(
            f"timed out ({name}): {detail}", method=method, url=url, request_sent=not unsent
        )
    error = APIConnectionError(
        f"connection failed ({name}): {detail}", method=method, url=url, request_sent=not unsent
    )
    if not isinstance(exc, httpx.TransportError):  # e.g. a body that fails to decode
        error.retryable = False
    return error


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: a number, or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils  # rare: most services send seconds

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _read_body(response: httpx.Response) -> tuple[Any, str | None, str | None]:
    text = response.text
    try:
        body = json.loads(text)
    except ValueError:
        return text, text.strip()[:500] or None, None
    if not isinstance(body, dict):
        return body, None, None
    error, code, message = body.get("error"), body.get("code"), body.get("message")
    if isinstance(error, dict):  # {"error": {"message", "code"}}
        message = error.get("message", message)
        code = error.get("code", code)
    elif isinstance(error, str):
        message = error
    return (
        body,
        message if isinstance(message, str) else None,
        code if isinstance(code, str) else None,
    )


# Names for the codes a caller may want to branch on (mirroring the HTTP error codes).
CLOSE_CODES = {
    1008: "policy_violation",
    4400: "invalid_request",
    4401: "unauthorized",
    4403: "forbidden",
    4404: "job_not_found",
    4429: "rate_limited",
}
TRANSIENT_CLOSE_CODES = frozenset({4408, 4429})  # timeout, rate limit: as HTTP 408 and 429


class RealtimeError(EmitError):
    """A realtime stream was refused, or lost its connection.

    ``close_code`` is the WebSocket close code (4401 bad token, 4403 missing scope or
    other space, 4404 unknown job, 1006 connection lost, 1012 server restart...), or None
    when no socket opened (connection refused, or ``status``, the HTTP status of a
    refused handshake). ``retryable`` says whether another attempt may succeed;
    ``reconnect_in`` is the delay before the next one, or None when the stream ends.
    The message never holds the token.
    """

    def __init__(
        self,
        message: str,
        *,
        close_code: int | None = None,
        reason: str = "",
        status: int | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.reason = reason
        self.status = status
        self.code = CLOSE_CODES.get(close_code) if close_code is not None else None
        self.retryable = retryable
        self.reconnect_in: float | None = None
        """Seconds before the next connection attempt; None when there is none."""

    def __str__(self) -> str:
        if self.reconnect_in is None:
            return self.message
        return f"{self.message}; reconnecting in {self.reconnect_in:.2f} s"


class DeadlineExceeded(EmitError):
    """Raised at a job call made after the run's deadline passed (and the job was failed)."""


def error_message(error: str | BaseException) -> str:
    """What ``fail`` sends for ``error``: the text, or ``Type: text`` for an exception.

    Text that UTF-8 cannot hold is written out (see :func:`escape_surrogates`), so the
    message is exactly what the service stores, and what a read-back shows. Past
    ``MAX_ERROR_LENGTH`` characters it is cut, saying so: a service caps what it stores,
    and the job's logs have the whole traceback.
    """
    try:
        text = str(error)
    except Exception:  # a broken __str__ must not keep the job from being failed
        text = f"<unprintable {type(error).__name__} object>"
    if isinstance(error, BaseException):
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    if len(text) > MAX_ERROR_LENGTH:
        text = f"{text[:MAX_ERROR_LENGTH]}... ({len(text)} characters in all)"
    return escape_surrogates(text)


MAX_ERROR_LENGTH = 8000
"""The most characters of an error that ``fail`` sends."""


def escape_surrogates(text: str) -> str:
    """``text`` with each lone surrogate written out as plain text, so UTF-8 can hold it.

    A byte that ``os.fsdecode`` could not decode (U+DC80..U+DCFF) reads as that byte,
    any other lone surrogate as its code point:

        escape_surrogates(os.fsdecode(b"report-\\xff.csv")) == "report-\\\\xff.csv"
        escape_surrogates("\\ud800") == "\\\\ud800"
    """
    try:
        text.encode()
    except UnicodeEncodeError:
        return "".join(_written_out(c) if "\ud800" <= c <= "\udfff" else c for c in text)
    return text


def _written_out(char: str) -> str:
    point = ord(char)
    if 0xDC80 <= point <= 0xDCFF:
        return f"\\x{point - 0xDC00:02x}"
    return f"\\u{point:04x}"
