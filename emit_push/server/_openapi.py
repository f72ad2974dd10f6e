"""The OpenAPI 3.1 document of the public HTTP endpoints (``/api/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

from ._schemas import (
    CompleteIn,
    FailIn,
    JobSpecIn,
    KillIn,
    LogLineIn,
    PollIn,
    ProgressIn,
    PushSettingsIn,
)

__all__ = ["openapi_document"]

Status = Literal["scheduled", "pending", "delivered", "running", "completed", "dead", "killed"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class Error(_Out):
    error: str
    code: str


class JobRef(_Out):
    id: str
    spaceId: str
    status: Status
    realtimeUrl: str


class SubProgress(_Out):
    percent: float
    message: str | None = None


class Progress(_Out):
    percent: float
    message: str
    subProgress: dict[str, SubProgress] | None = None
    updatedAt: str


class Job(_Out):
    id: str
    spaceId: str
    name: str
    payload: Any
    status: Status
    maxRetries: int
    attemptNumber: int
    timeoutSeconds: int
    scheduledFor: str | None
    callbackUrl: str | None
    callbackHeaders: dict[str, str] | None
    deliveredAt: str | None
    startedAt: str | None
    completedAt: str | None
    result: Any
    progress: Progress | None
    checkpoint: dict[str, Any] | None
    createdAt: str
    updatedAt: str


class JobEvent(_Out):
    id: str
    type: str
    data: Any
    attemptNumber: int
    createdAt: str


class JobWithEvents(Job):
    events: list[JobEvent]
    eventsCursor: str | None


class Descriptor(_Out):
    id: str
    spaceId: str
    name: str
    payload: Any
    timeoutSeconds: int
    maxRetries: int
    attemptNumber: int
    createdAt: str


class PollResult(_Out):
    jobs: list[Descriptor]


class WorkerReply(_Out):
    id: str
    status: Status
    attemptNumber: int


class ProgressView(_Out):
    jobId: str
    status: Status
    progress: Progress | None


class LogEntry(_Out):
    seq: int
    ts: str
    level: Literal["trace", "debug", "info", "warn", "error", "fatal"]
    message: str
    source: str | None
    metadata: dict[str, Any] | None


class LogPage(_Out):
    logs: list[LogEntry]
    nextCursor: int | None


class LogsAccepted(_Out):
    accepted: int
    firstSeq: int | None
    lastSeq: int | None


class PushSettings(_Out):
    url: str | None
    headers: dict[str, str]
    jobNames: list[str] | None


_MODELS: list[type[BaseModel]] = [
    JobSpecIn, PollIn, ProgressIn, CompleteIn, FailIn, KillIn, PushSettingsIn, LogLineIn,
    Error, JobRef, Job, JobWithEvents, Descriptor, PollResult, WorkerReply, ProgressView,
    LogPage, LogsAccepted, PushSettings,
]  # fmt: skip

_ERRORS = {
    400: "Invalid request: the message names the field",
    401: "Missing or unknown API key",
    403: "Missing scope, or a key of another space",
    404: "Unknown job",
    409: "Not allowed in the job's status (`invalid_state`), or the job was killed (`job_killed`)",
    413: "Body, payload, result, worker text or event data over the server's limit",
    415: "Unsupported Content-Type or Content-Encoding",
    429: "Rate limited; see Retry-After",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _op(
    summary: str,
    scope: str,
    ok: tuple[int, dict[str, Any]],
    errors: tuple[int, ...],
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    path: str = "job_id",
    body_required: bool = True,
) -> dict[str, Any]:
    responses: dict[str, Any] = {str(ok[0]): {"description": "Success", **_json(ok[1])}}
    for status in (401, 403, 429, *errors):
        responses[str(status)] = {"description": _ERRORS[status], **_json(_ref("Error"))}
    op: dict[str, Any] = {
        "summary": summary,
        "description": f"Scope: `{scope}`.",
        "parameters": [_path(path), *(params or [])],
        "responses": responses,
        "security": [{"apiKey": []}, {"bearer": []}],
    }
    if body is not None:
        op["requestBody"] = {"required": body_required, **body}
    return op


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


def _list_params() -> list[dict[str, Any]]:
    statuses = ["scheduled", "pending", "delivered", "running", "completed", "dead", "killed"]
    return [
        _query("status", {"type": "string", "enum": statuses}, "Only this status"),
        _query("limit", {"type": "integer", "minimum": 1}, "Default 50, at most 100"),
        _query("offset", {"type": "integer", "minimum": 0}, "Default 0"),
        _query("before", {"type": "string"}, "Only jobs older than this job (a cursor)"),
    ]


def _job_params() -> list[dict[str, Any]]:
    return [
        _query(
            "eventsLimit", {"type": "integer", "minimum": 1},
            "The latest events, default 100, at most 1000 (and about 4 MiB of data)",
        ),
        _query("eventsBefore", {"type": "string"}, "Only events before this one (eventsCursor)"),
    ]  # fmt: skip


def _log_params() -> list[dict[str, Any]]:
    seq = {"type": "integer", "minimum": 0}
    level = {"type": "string", "enum": ["trace", "debug", "info", "warn", "error", "fatal"]}
    return [
        _query("after", seq, "Only entries with a larger seq (the cursor)"),
        _query("before", seq, "Only entries with a smaller seq"),
        _query("limit", {"type": "integer", "minimum": 1}, "Default 100, at most 1000"),
        _query("level", level, "Minimum level"),
        _query("q", {"type": "string", "maxLength": 1000}, "Substring of the message, any case"),
    ]


_ACTIONS = {
    "ack": ("Acknowledge: delivered → running", "jobs:ack", None),
    "keepalive": ("Re-arm the execution timer", "jobs:keepalive", None),
    "progress": ("Report progress (re-arms the timer)", "jobs:progress", "ProgressIn"),
    "checkpoint": ("Store checkpoint data (re-arms the timer)", "jobs:event", "object"),
    "event": ("Record a custom event", "jobs:event", "object"),
    "complete": ("Complete with a result", "jobs:complete", "CompleteIn"),
    "fail": ("Fail: retry or dead", "jobs:fail", "FailIn"),
    "kill": ("Kill (any non-terminal status)", "jobs:kill", "KillIn"),
}


def _paths() -> dict[str, Any]:
    space, array = "space_id", "array"
    bulk = {"type": array, "items": _ref("JobSpecIn"), "minItems": 1, "maxItems": 1000}
    refs = {"oneOf": [_ref("JobRef"), {"type": array, "items": _ref("JobRef")}]}
    object_body = _json({"type": "object"})
    ignored_body = _json({"type": "object", "description": "Ignored"})
    ndjson = {
        "content": {
            "application/x-ndjson": {
                "schema": {"type": array, "items": _ref("LogLineIn")},
                "description": "One LogLineIn object a line; gzip with Content-Encoding: gzip.",
            }
        }
    }
    paths: dict[str, Any] = {
        "/spaces/{space_id}/jobs": {
            "post": _op(
                "Create one job or many (all or nothing)", "jobs:create", (201, refs),
                (400, 413), _json({"oneOf": [_ref("JobSpecIn"), bulk]}), path=space,
            ),
            "get": _op(
                "List jobs, newest first", "jobs:read",
                (200, {"type": array, "items": _ref("Job")}), (400,),
                params=_list_params(), path=space,
            ),
        },
        "/spaces/{space_id}/jobs/poll": {
            "post": _op(
                "Claim pending jobs, oldest first", "jobs:poll", (200, _ref("PollResult")),
                (400, 413), _json(_ref("PollIn")), path=space, body_required=False,
            ),
        },
        "/spaces/{space_id}/push": {
            "get": _op(
                "Push settings (local server only)", "space:admin",
                (200, _ref("PushSettings")), (), path=space,
            ),
            "put": _op(
                "Set push settings (local server only)", "space:admin",
                (200, _ref("PushSettings")), (400, 413), _json(_ref("PushSettingsIn")), path=space,
            ),
        },
        "/jobs/{job_id}": {
            "get": _op(
                "A job with its latest events", "jobs:read", (200, _ref("JobWithEvents")),
                (400, 404), params=_job_params(),
            ),
        },
        "/jobs/{job_id}/progress": {
            "get": _op(
                "Latest progress", "jobs:read:progress", (200, _ref("ProgressView")), (404,)
            ),
        },
        "/jobs/{job_id}/logs": {
            "get": _op(
                "Read logs, oldest first", "jobs:read", (200, _ref("LogPage")), (400, 404),
                params=_log_params(),
            ),
            "post": _op(
                "Append NDJSON log lines (any status)", "jobs:event or jobs:progress",
                (200, _ref("LogsAccepted")), (400, 404, 413, 415), ndjson,
            ),
        },
        "/jobs/{job_id}/claim": {
            "post": _op(
                "Claim one pending job", "jobs:poll", (200, _ref("Descriptor")),
                (400, 404, 409, 413), ignored_body, body_required=False,
            ),
        },
    }  # fmt: skip
    for action, (summary, scope, model) in _ACTIONS.items():
        body = {None: ignored_body, "object": object_body}.get(model) or _json(_ref(str(model)))
        required = model in ("object", "ProgressIn", "FailIn")
        ok = (200, _ref("WorkerReply"))
        paths.setdefault(f"/jobs/{{job_id}}/{action}", {})["post"] = _op(
            summary, scope, ok, (400, 404, 409, 413), body, body_required=required
        )
    return paths


def openapi_document(prefix: str) -> dict[str, Any]:
    """The document; ``prefix`` is where the API is mounted (``/api/v1``)."""
    _, defs = models_json_schema(
        [(model, "validation") for model in _MODELS], ref_template="#/components/schemas/{model}"
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "emit local server",
            "version": "1",
            "description": (
                "The emit.run HTTP API as the local emit server implements it. WebSocket "
                "streams: GET /realtime/{jobId} and GET /realtime/spaces/{spaceId}."
            ),
        },
        "servers": [{"url": prefix}],
        "paths": _paths(),
        "components": {
            "schemas": defs["$defs"],
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }
