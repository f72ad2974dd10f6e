"""A one-job stand-in for emit.run: answers a run's HTTP calls as the service would, and
records them.

It keeps the job's status by the contract's rules (``delivered`` → ``running`` →
``completed``, ``pending`` for a retry, ``dead``, ``killed``), answers 409 ``job_killed``
once the job is killed (by the run, or by the test's ``kill_after``), 409
``invalid_state`` for a call the status does not allow, 400 for a progress report the
service would refuse, and stores log batches (NDJSON, gzipped or not) whatever the status.
It sits behind an ``httpx.MockTransport``, so the client, the logger and the execution
path run exactly as against the real service.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

import httpx

from .._wire.models import JobDescriptor, LogEntry, format_timestamp

__all__ = ["API_PREFIX", "KillAfter", "ProgressReport", "RecordedCall", "Service"]

API_PREFIX = "/api/v1"


class RecordedCall(NamedTuple):
    """One API call the run made, and the HTTP status it was answered with."""

    method: str
    path: str
    """As in the API reference: ``/jobs/<id>/progress``."""
    body: Any
    """The JSON body sent; for a log batch, its decoded lines; None without a body."""
    status: int

    @property
    def action(self) -> str:
        """``ack``, ``progress``, ``logs``...; ``get`` for reading the job itself."""
        parts = self.path.strip("/").split("/")
        return parts[2] if len(parts) > 2 else "get"


class ProgressReport(NamedTuple):
    """One ``job.progress(...)`` call, as the service stored it."""

    percent: float
    message: str
    sub_progress: dict[str, Any] | None = None


KillAfter = int | Callable[[RecordedCall], bool]
"""When the simulated kill happens: after this many job calls were answered, or after
the first call for which the function returns True."""

_LIVE = ("pending", "delivered", "running")
_ALLOWED = {
    "ack": ("delivered",),
    "keepalive": ("running",),
    "progress": ("running",),
    "checkpoint": ("running",),
    "event": ("running",),
    "complete": ("running",),
    "fail": ("running",),
    "kill": _LIVE,
}


class Service:
    """The job as the service keeps it, and what the run sent; ``handle`` is the transport."""

    def __init__(
        self,
        descriptor: JobDescriptor,
        kill_after: KillAfter | None = None,
        *,
        checkpoint: Any = None,
    ) -> None:
        if isinstance(kill_after, bool) or not (
            kill_after is None or callable(kill_after) or kill_after >= 0
        ):
            raise TypeError("kill_after must be a number of calls (>= 0) or a function")
        self.descriptor = descriptor
        self.status = "delivered"
        self.attempt_number = descriptor.attempt_number
        self.result: Any = None
        self.progress: list[ProgressReport] = []
        self.checkpoints: list[Any] = []
        self.events: list[Any] = []
        self.logs: list[LogEntry] = []
        self.calls: list[RecordedCall] = []
        self.killed_by_test = False
        self.history: list[dict[str, Any]] = []
        """The job's checkpoint and custom events, as Get Job returns them."""
        self._earlier = checkpoint  # what an earlier attempt stored (run_handler(checkpoint=))
        if checkpoint is not None:
            self._record("checkpoint", checkpoint, descriptor.attempt_number - 1)
        self._kill_after = kill_after
        self._answered = 0  # job calls answered with a success

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix(API_PREFIX)
        body = _decoded(request)
        parts = path.strip("/").split("/")
        action = parts[2] if len(parts) == 3 else ""
        if not (2 <= len(parts) <= 3 and parts[0] == "jobs"):
            status, answer = 404, _error("not_found", "No such endpoint")
        elif parts[1] != self.descriptor.id:
            status, answer = 404, _error("job_not_found", f"Job {parts[1]!r} not found")
        elif request.method == "GET":
            status, answer = self._read(action, request.url.params)
        elif request.method == "POST" and action == "logs":
            status, answer = self._append_logs(body)
        elif request.method == "POST" and action in _ALLOWED:
            status, answer = self._act(action, body)
        else:
            status, answer = 405, _error("method_not_allowed", "Method not allowed")
        call = RecordedCall(request.method, path, body, status)
        self.calls.append(call)
        if action in _ALLOWED and status == 200:
            self._answered += 1
            if callable(self._kill_after) and self._kill_after(call):
                self._kill_now()
        return httpx.Response(status, json=answer)

    def _kill_now(self) -> None:
        if self.status in _LIVE:
            self.status, self.killed_by_test = "killed", True

    def _act(self, action: str, body: Any) -> tuple[int, dict[str, Any]]:
        kill_after = self._kill_after
        if isinstance(kill_after, int) and self._answered >= kill_after:
            self._kill_now()
        if self.status not in _ALLOWED[action]:
            if self.status == "killed":
                return 409, _error("job_killed", f"Job {self.descriptor.id} was killed")
            message = f"Cannot {action} job {self.descriptor.id}: it is {self.status}"
            return 409, _error("invalid_state", message)
        data = body if isinstance(body, dict) else {}
        if action == "progress":
            problem = _progress_problem(data)
            if problem is not None:
                return 400, _error("invalid_request", problem)
            self.progress.append(
                ProgressReport(data["percent"], data["message"], data.get("subProgress"))
            )
        elif action == "checkpoint":
            self.checkpoints.append(body)
            self._record("checkpoint", body, self.attempt_number)
        elif action == "event":
            self.events.append(body)
            self._record("event", body, self.attempt_number)
        elif action == "ack":
            self.status = "running"
        elif action == "complete":
            self.status, self.result = "completed", data.get("result")
        elif action == "fail":
            if self.attempt_number >= self.descriptor.max_retries:
                self.status, self.result = "dead", {"error": data.get("error")}
            else:
                self.status, self.attempt_number = "pending", self.attempt_number + 1
        elif action == "kill":
            self.status, self.result = "killed", {"reason": data.get("reason")}
        return 200, self._state()

    def _record(self, kind: str, data: Any, attempt_number: int) -> None:
        self.history.append(
            {
                "id": len(self.history) + 1,
                "type": kind,
                "data": data,
                "attemptNumber": attempt_number,
                "createdAt": format_timestamp(datetime.now(UTC)),
            }
        )

    def _state(self) -> dict[str, Any]:
        return {
            "id": self.descriptor.id,
            "status": self.status,
            "attemptNumber": self.attempt_number,
        }

    def _append_logs(self, lines: Any) -> tuple[int, dict[str, Any]]:
        try:
            entries = [LogEntry.model_validate(line) for line in lines or ()]
        except ValueError as exc:  # the service refuses the whole batch
            return 400, _error("invalid_request", str(exc).splitlines()[0])
        if not entries:
            return 200, {"accepted": 0, "firstSeq": None, "lastSeq": None}
        first = len(self.logs) + 1
        for seq, entry in enumerate(entries, start=first):
            self.logs.append(entry.model_copy(update={"seq": seq}))
        return 200, {"accepted": len(entries), "firstSeq": first, "lastSeq": len(self.logs)}

    def _read(self, action: str, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        latest = self.progress[-1] if self.progress else None
        shown = None
        if latest is not None:
            shown = {
                "percent": latest.percent,
                "message": latest.message,
                "subProgress": latest.sub_progress,
                "updatedAt": format_timestamp(datetime.now(UTC)),
            }
        if action == "progress":
            return 200, {"jobId": self.descriptor.id, "status": self.status, "progress": shown}
        if action == "logs":
            after = int(params.get("after", 0))
            limit = int(params.get("limit", 100))
            page = [e for e in self.logs if (e.seq or 0) > after][:limit]
            more = page and page[-1].seq != len(self.logs)
            logs = [e.model_dump(mode="json", by_alias=True, exclude_none=True) for e in page]
            return 200, {"logs": logs, "nextCursor": page[-1].seq if more else None}
        if action:
            return 405, _error("method_not_allowed", "Method not allowed")
        document = self.descriptor.model_dump(mode="json", by_alias=True)
        document |= self._state()
        document |= {
            "result": self.result,
            "progress": shown,
            "checkpoint": self.checkpoints[-1] if self.checkpoints else self._earlier,
            "events": list(self.history),
        }
        return 200, document


def _decoded(request: httpx.Request) -> Any:
    content = request.content
    if request.headers.get("content-encoding") == "gzip":
        content = gzip.decompress(content)
    if not content.strip():
        return None
    if request.headers.get("content-type", "").startswith("application/x-ndjson"):
        return [json.loads(line) for line in content.splitlines() if line.strip()]
    return json.loads(content)


def _progress_problem(data: Mapping[str, Any]) -> str | None:
    """What the service would say about a progress report it refuses (400), or None."""
    stages = data.get("subProgress") or {}
    if not isinstance(stages, dict) or not all(isinstance(s, dict) for s in stages.values()):
        return "subProgress: must be an object of objects"
    percents = [("percent", data.get("percent"))]
    percents += [(f"subProgress.{name}.percent", s.get("percent")) for name, s in stages.items()]
    for where, percent in percents:
        if isinstance(percent, bool) or not isinstance(percent, int | float):
            return f"{where}: must be a number"
        if not 0 <= percent <= 100:
            return f"{where}: must be between 0 and 100"
    if not isinstance(data.get("message"), str) or not data["message"]:
        return "message: must be a non-empty string"
    return None


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": message, "code": code}
