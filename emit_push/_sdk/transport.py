"""Sending calls: one request flow (pure), and a sync and an async driver around it.

:func:`call_flow` is a generator in the manner of httpx's ``Auth.auth_flow``: it yields an
``httpx.Request`` to send, or a number of seconds to sleep, and is sent back the answer
(an ``httpx.Response`` or the httpx error). Retries, error mapping and the read-backs of
the job after a 409 all live in it, once: the one that confirms an ambiguous
``complete``/``fail``/``ack``/``kill``, and the one that tells a kill from another
conflict when the service's 409 carries no code. The
drivers differ only in how they send and sleep, and in how they get the API key.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio
import httpx

from .._exceptions import (
    APIError,
    ConfigurationError,
    ConflictError,
    EmitError,
    JobKilledError,
    UnexpectedResponseError,
    error_from_response,
    error_from_transport,
)
from .._wire import endpoints as ep
from .._wire.endpoints import Call
from .._wire.retry import unprocessed
from .config import ClientConfig

if TYPE_CHECKING:
    from .._wire.models import JobDetails

__all__ = ["AsyncDriver", "SyncDriver", "call_flow"]

T = TypeVar("T")
Action = httpx.Request | float
Outcome = httpx.Response | httpx.RequestError | None
Flow = Generator[Action, Outcome, T]

log = logging.getLogger("emit_push")


def call_flow(
    call: Call[T],
    config: ClientConfig,
    until: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Flow[T]:
    """Send ``call`` until it succeeds, is not worth retrying, or retries run out.

    With ``until`` (a ``clock()`` value) the retries are bounded by that time rather than
    by the policy's ``max_retries``: a running job's calls are sent until the run's
    deadline, so that a service that is down for a while costs a delay, not the job. A
    backoff that would pass ``until`` is cut short: the last attempt is made at ``until``.
    """
    url = config.base_url + call.path
    extensions = {} if config.timeout is None else {"timeout": config.timeout.as_dict()}
    headers = dict(config.headers)
    if call.headers:
        headers.update(call.headers)
    request = httpx.Request(
        call.method, url, params=call.params, content=call.content,
        headers=headers, extensions=extensions,
    )  # fmt: skip
    attempt = 0
    while True:
        outcome = yield request
        if isinstance(outcome, httpx.Response):
            if outcome.is_success:
                return _parse(call, outcome, url)
            error: EmitError = error_from_response(outcome, call.method, url)
        else:
            assert outcome is not None
            error = error_from_transport(outcome, call.method, url)
        delay = config.retry.delay(call.retry, error, attempt, persist=until is not None)
        if delay is not None and until is not None and attempt >= config.retry.max_retries:
            delay = _within(delay, until - clock(), error)
        conflict = isinstance(error, ConflictError)
        # An earlier attempt may have landed: a retry met 409 (its echo?), or an answer
        # was lost and the call would go again. The job tells: one that shows the effect
        # is a success; one that moved on to its next attempt (a landed fail makes it
        # pending again at once, and another worker may hold it by now) is sent nothing.
        # A 409 without a code may be a kill the service does not name: the job tells too.
        in_doubt = (conflict and attempt > 0) or (delay is not None and not unprocessed(error))
        confirm = call.confirm if in_doubt else None
        probe = call.worker_job if conflict and error.code is None else None
        job_id = confirm.job_id if confirm is not None else probe
        job = None if job_id is None else (yield from _read_job(job_id, config))
        if job is not None and confirm is not None:
            confirmed = confirm.check(job)
            if confirmed is not None:
                log.info("%s %s: an earlier attempt had landed", call.method, call.path)
                return confirmed
            if confirm.moved_on(job):
                delay = None
        if probe is not None and job is not None and job.status == "killed":
            raise _killed(cast(ConflictError, error)) from error
        if (
            delay is None
            and call.pending_job is not None
            and (again := config.retry.delay("idempotent", error, attempt)) is not None
        ):
            # A claim whose fate is unknown (say, a pooled connection the server had just
            # closed): a job still pending was not claimed by it, nor by anyone.
            job = yield from _read_job(call.pending_job, config)
            if job is not None and job.status == "pending":
                delay = again
        if delay is None:
            raise error from (outcome if isinstance(outcome, Exception) else None)
        attempt += 1
        log.info("retry %d of %s %s in %.2fs: %s", attempt, call.method, call.path, delay, error)
        yield float(delay)


def _within(delay: float, left: float, error: EmitError) -> float | None:
    """The wait before the next attempt when the retries end at a time ``left`` seconds
    away: a backoff that would pass it is cut short, so that the last attempt is made
    then rather than a backoff early (up to ``max_delay`` of the time unused); a
    ``Retry-After`` that does not fit ends the retries (the service asked for that wait)."""
    if delay < left:
        return delay
    told = isinstance(error, APIError) and error.retry_after is not None
    return None if told or left <= 0 else left


def _parse(call: Call[T], response: httpx.Response, url: str) -> T:
    try:
        return call.parse(response)
    except (ValueError, TypeError, KeyError) as exc:  # pydantic's ValidationError is a ValueError
        raise UnexpectedResponseError(
            f"cannot read the answer: {str(exc).splitlines()[0]}",
            status=response.status_code,
            method=call.method,
            url=url,
            body=response.text[:2000],
        ) from exc


def _read_job(job_id: str, config: ClientConfig) -> Flow[JobDetails | None]:
    """The job, in one attempt (the call it checks has its own retries), or None."""
    once = replace(config, retry=config.retry._replace(max_retries=0))
    try:
        return (yield from call_flow(ep.get(job_id), once))
    except EmitError:
        return None  # cannot tell


def _killed(conflict: ConflictError) -> JobKilledError:
    return JobKilledError(
        f"{conflict.message} (the job was killed)",
        status=conflict.status, code=conflict.code, request_id=conflict.request_id,
        method=conflict.method, url=conflict.url, body=conflict.body,
    )  # fmt: skip


def _checked_key(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError("the api_key function must return a non-empty string")
    return value.strip()


def _result(stop: StopIteration) -> Any:
    return stop.value


def _scrubbed(response: httpx.Response, key: str) -> httpx.Response:
    """An error answer that echoes the key (a misbehaving proxy) loses it here."""
    if response.is_success or key.encode() not in response.content:
        return response
    from .._wire.redact import redact_body

    content = redact_body(response.content, key)
    if content is response.content:
        return response
    dropped = {"content-length", "content-encoding", "transfer-encoding"}
    headers = [(k, v) for k, v in response.headers.multi_items() if k not in dropped]
    return httpx.Response(response.status_code, headers=headers, content=content)


class SyncDriver:
    """Runs calls with an ``httpx.Client``."""

    def __init__(self, config: ClientConfig, http: httpx.Client, *, owns_http: bool) -> None:
        self.config = config
        self.http = http
        self.owns_http = owns_http
        self.sleep: Callable[[float], None] = time.sleep

    def send(self, call: Call[T], until: float | None = None) -> T:
        """Send ``call`` (with retries, until ``until`` if given: see :func:`call_flow`) and
        return its parsed answer; raises ``EmitError``."""
        flow = call_flow(call, self.config, until)
        outcome: Outcome = None
        while True:
            try:
                action = flow.send(outcome)
            except StopIteration as stop:
                return cast(T, _result(stop))
            if isinstance(action, float):
                self.sleep(action)
                outcome = None
            else:
                outcome = self._transmit(action)

    def _transmit(self, request: httpx.Request) -> httpx.Response | httpx.RequestError:
        key = self.config.api_key
        if not isinstance(key, str):
            value = key()
            if inspect.isawaitable(value):
                if inspect.iscoroutine(value):
                    value.close()
                raise ConfigurationError("the api_key function is async; use AsyncEmitClient")
            key = _checked_key(value)
        name, header = self.config.auth_header(key)
        request.headers[name] = header
        try:
            return _scrubbed(self.http.send(request), key)
        except httpx.RequestError as exc:
            return exc
        finally:
            del request.headers[name]  # nothing that outlives the call holds the key

    def close(self) -> None:
        if self.owns_http:
            self.http.close()


class AsyncDriver:
    """Runs calls with an ``httpx.AsyncClient``."""

    def __init__(self, config: ClientConfig, http: httpx.AsyncClient, *, owns_http: bool) -> None:
        self.config = config
        self.http = http
        self.owns_http = owns_http
        self.sleep: Callable[[float], Awaitable[None]] = anyio.sleep

    async def send(self, call: Call[T], until: float | None = None) -> T:
        """Send ``call`` (with retries, until ``until`` if given: see :func:`call_flow`) and
        return its parsed answer; raises ``EmitError``."""
        flow = call_flow(call, self.config, until)
        outcome: Outcome = None
        while True:
            try:
                action = flow.send(outcome)
            except StopIteration as stop:
                return cast(T, _result(stop))
            if isinstance(action, float):
                await self.sleep(action)
                outcome = None
            else:
                outcome = await self._transmit(action)

    async def _transmit(self, request: httpx.Request) -> httpx.Response | httpx.RequestError:
        key = self.config.api_key
        if not isinstance(key, str):
            value = key()
            key = _checked_key(await value if inspect.isawaitable(value) else value)
        name, header = self.config.auth_header(key)
        request.headers[name] = header
        try:
            return _scrubbed(await self.http.send(request), key)
        except httpx.RequestError as exc:
            return exc
        finally:
            del request.headers[name]  # nothing that outlives the call holds the key

    async def aclose(self) -> None:
        if self.owns_http:
            await self.http.aclose()
