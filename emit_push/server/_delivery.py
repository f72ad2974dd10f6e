"""One attempt at a push or a callback, and what it records: the event, and when to retry.

Both go out through the guarded client (``_egress``): a destination that is not allowed is
refused before any connection, recorded as such, and never retried.

- **Push** (contract §6, and DECIDED here): a ``job.pending`` push that is not answered
  2xx (no answer, a timeout, 5xx, 401, a redirect...) is sent again while the job is
  still pending at the same attempt, after each of ``push_retry_delays``; a job that
  has moved on ends the retries silently. Recorded as ``push_sent`` / ``push_failed``,
  in the job's history and on its full streams (DECIDED; ``_realtime``).
- **Callback** (§7): only 200 counts; retried after each of ``callback_retry_delays``.
  Its events tell only a fixed phrase for a failed connection (``describe_briefly``).

Events of both carry ``url``, ``statusCode``, ``retryAttempt``, ``willRetry``, ``error``;
a failed push also its ``hint``, and the app's own ``answer`` when it gave a reason
(the ``error`` of a JSON answer: an emit-push app's 500 ``no_api_here`` names the fix).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from ._addresses import host_problem
from ._config import ServerConfig
from ._egress import DestinationRefused
from ._engine import Engine
from ._outbound import describe_briefly, describe_failure, redact, sendable_headers, url_host

__all__ = ["Outcome", "Sender"]

Outcome = tuple[str | None, dict[str, Any] | None, int | None]  # event kind, data, retry at
"""What an attempt records; ``(None, None, None)`` drops the row with no event."""

_FIXED_HEADERS = {"Content-Type": "application/json", "User-Agent": "emit.run/1.0"}
_REFUSED = "refused: the destination is not allowed"
_DROP: Outcome = (None, None, None)
_ANSWER_BYTES = 4096  # of a refused push's answer, read for its reason


class Sender:
    """Makes the attempts the scheduler starts, one outbox row each."""

    def __init__(self, engine: Engine, config: ServerConfig) -> None:
        self._engine = engine
        self._config = config
        from ._guarded import guarded_client  # httpcore with the first sender

        self._http = guarded_client(config.resolver)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def attempt(self, row: Mapping[str, Any]) -> Outcome:
        return await (self._push(row) if row["kind"] == "push" else self._callback(row))

    async def _send(
        self, url: str, headers: Mapping[str, str], body: str, timeout: float, keep: int = 0
    ) -> tuple[int | None, Exception | None, bytes]:
        """``(status, None, answer)``, or ``(None, error, b"")`` when the attempt raised
        anything at all. ``answer``: the first ``keep`` bytes of a non-2xx answer."""
        target = url_host(url)
        if target is not None and (problem := host_problem(target[0])):
            return None, DestinationRefused(problem), b""  # stored by an older server
        try:
            merged = httpx.Headers(sendable_headers(headers))
            merged.update(_FIXED_HEADERS)
            request = self._http.build_request(
                "POST", url, content=body, headers=merged, timeout=timeout
            )
            response = await self._http.send(request, stream=True)
            try:
                answer = b""
                if keep and not 200 <= response.status_code < 300:
                    async for chunk in response.aiter_bytes():
                        answer += chunk
                        if len(answer) >= keep:
                            break
            finally:
                await response.aclose()
        except Exception as exc:  # not only httpx's: an attempt must always end recorded
            return None, exc, b""
        return response.status_code, None, answer[:keep]

    def _retry_at(self, delays: Sequence[float], attempt: int) -> int | None:
        if attempt >= len(delays):
            return None
        return self._config.clock.now_ms() + round(delays[attempt] * 1000)

    async def _push(self, row: Mapping[str, Any]) -> Outcome:
        settings = self._engine.push.get(row["space_id"])
        if settings is None or not settings.url:  # push was turned off meanwhile
            return _DROP
        attempt: int = row["attempt"]
        if attempt and not self._still_pending(row):
            return _DROP
        headers = settings.headers or {}
        status, exc, answer = await self._send(
            settings.url, headers, row["body"], self._config.push_timeout, _ANSWER_BYTES
        )
        data: dict[str, Any] = {"url": settings.url, "statusCode": status, "retryAttempt": attempt}
        if status is not None and 200 <= status < 300:
            return "push_sent", data | {"willRetry": False, "error": None}, None
        refused = isinstance(exc, DestinationRefused)
        retry_at = None if refused else self._retry_at(self._config.push_retry_delays, attempt)
        data |= {
            "willRetry": retry_at is not None,
            "error": _push_error(status, exc, headers.values()),
        }
        reason = app_reason(answer, headers.values())
        if reason is not None:
            data["answer"] = reason
        hint = push_hint(status, exc, reason)
        if hint is not None:
            data["hint"] = hint
        return "push_failed", data, retry_at

    def _still_pending(self, row: Mapping[str, Any]) -> bool:
        """Whether the pushed job waits still, at the attempt the push announced."""
        job = self._engine.db.execute(
            "SELECT status, attempt_number FROM jobs WHERE id = ?", (row["job_id"],)
        ).fetchone()
        announced = json.loads(row["body"]).get("attemptNumber")
        return job is not None and tuple(job) == ("pending", announced)

    async def _callback(self, row: Mapping[str, Any]) -> Outcome:
        attempt: int = row["attempt"]
        status: int | None
        exc: Exception | None
        try:
            headers = json.loads(row["headers"] or "{}")
            if not isinstance(headers, dict):
                raise TypeError("callback headers are not an object")
        except (ValueError, TypeError) as damaged:
            status, exc = None, damaged
        else:
            status, exc, _ = await self._send(
                row["url"], headers, row["body"], self._config.callback_timeout
            )
        data: dict[str, Any] = {"url": row["url"], "retryAttempt": attempt, "statusCode": status}
        if status == 200:
            return "callback_sent", data | {"willRetry": False, "error": None}, None
        refused = isinstance(exc, DestinationRefused)
        retry_at = None if refused else self._retry_at(self._config.callback_retry_delays, attempt)
        data |= {"willRetry": retry_at is not None, "error": _callback_error(status, exc)}
        return "callback_failed", data, retry_at


def app_reason(answer: bytes, secrets: Iterable[str]) -> str | None:
    """Why the app refused a push, in its own words: the ``error`` of a JSON answer (as
    emit-push's answers carry one, ``{"error", "code"}``), its first line, at most 300
    characters, header values redacted. None for any other answer."""
    try:
        document = json.loads(answer)
    except ValueError:  # not JSON, or cut short: an HTML error page says nothing usable
        return None
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, str) or not error.strip():
        return None
    line = redact(error.strip().splitlines()[0], secrets)  # first: a cut may split a secret
    return line if len(line) <= 300 else line[:297] + "..."


def push_hint(status: int | None, exc: Exception | None, reason: str | None = None) -> str | None:
    """What most likely fixes a failed push, for the people reading its event; the app's
    own reason (``app_reason``) for an answer that says nothing else (a 500)."""
    if status in (307, 308):
        return (
            "a redirect: an app mounted at /path takes pushes at /path/ (mind the trailing"
            " slash); set the push URL to where the app answers"
        )
    if status in (301, 302, 303):
        return "a redirect: set the push URL to the address the app answers at"
    if status in (401, 403):
        return (
            "the app refused the push secret: the space's push headers must carry the"
            " app's EMIT_PUSH_SECRET (Authorization: Bearer <secret>, or its header)"
        )
    if status in (404, 405):
        return "nothing takes pushes at this URL: check the path the app is mounted at"
    if status is not None and status >= 500:
        return f"the app answered: {reason}" if reason else "the app failed to answer: see its log"
    if exc is not None and not isinstance(exc, DestinationRefused):
        return "the app could not be reached: is it running, at this host and port?"
    return None


def _push_error(status: int | None, exc: Exception | None, secrets: Iterable[str]) -> str:
    """The push's URL is the space admin's: the failure is told in full (header values
    redacted), a refusal with its reason."""
    if exc is None:
        return f"HTTP {status}"
    if isinstance(exc, DestinationRefused):
        return f"refused: {exc}"
    return describe_failure(exc, secrets)


def _callback_error(status: int | None, exc: Exception | None) -> str:
    """A callback's URL is any job creator's: a fixed phrase (``describe_briefly``)."""
    if exc is None:
        return f"HTTP {status}"
    if isinstance(exc, DestinationRefused):
        return _REFUSED
    return describe_briefly(exc)
