"""The HTTP endpoints of contract §5 and §6, mounted under ``/api/v1``.

Every handler authenticates first (401/403), then reads and validates its input (400/413),
then makes one engine call (404/409). A call on an unknown job answers 404 even when its
body is also wrong: the job is looked up only when the body fails, so the hot path stays
one statement. Responses are built from plain dicts.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute, compile_path

from ._auth import Principal, key_from_headers
from ._egress import refuse_resolved
from ._errors import ApiError, bad_request
from ._http import gunzip, host, int_param, parse_json, read_body, too_large
from ._limits import check_worker_body
from ._queries import EVENTS_DEFAULT, EVENTS_MAX, load_job
from ._realtime import RealtimeEndpoints
from ._records import LogLine, NewJob, PushSettings
from ._schemas import (
    LEVELS,
    WORKER_BODIES,
    JobSpecIn,
    LogLineIn,
    PollIn,
    PushSettingsIn,
    outbound_headers,
    outbound_url,
    timestamp,
    validate,
)
from ._services import Services
from ._wire import STATUSES, descriptor, dumps, render, worker_reply

__all__ = ["Api"]

_NDJSON_TYPES = {"application/x-ndjson", "application/jsonl", "application/json", "text/plain"}
_MAX_LOG_LINES = 10_000
# action -> (scope, what the body may hold)
_ACTIONS: dict[str, tuple[str, str]] = {
    "claim": ("jobs:poll", "nothing"),
    "ack": ("jobs:ack", "nothing"),
    "keepalive": ("jobs:keepalive", "nothing"),
    "progress": ("jobs:progress", "progress"),
    "checkpoint": ("jobs:event", "object"),
    "event": ("jobs:event", "object"),
    "complete": ("jobs:complete", "complete"),
    "fail": ("jobs:fail", "fail"),
    "kill": ("jobs:kill", "kill"),
}


class Api:
    def __init__(self, server: Services, realtime: RealtimeEndpoints) -> None:
        self._s = server
        self._realtime = realtime
        self._prefix = ""

    def routes(self, prefix: str) -> list[BaseRoute]:
        """The API's routes under ``prefix`` (flat, not a Mount: one router level less)."""
        rt = self._realtime
        actions: dict[str, dict[str, Handler]] = {
            action: {"POST": functools.partial(self.job_action, action=action)}
            for action in _ACTIONS
        }
        actions["progress"]["GET"] = self.get_progress
        actions["logs"] = {"GET": self.get_logs, "POST": self.post_logs}
        durable = self._durable
        space_jobs: dict[str, Handler] = {"POST": self.create_jobs, "GET": self.list_jobs}
        push: dict[str, Handler] = {"GET": self.get_push, "PUT": self.put_push}
        routes: list[BaseRoute] = [  # the busiest first: the router tries them in order
            _route("/jobs/{job_id}/{action}", actions, "action", durable),
            _route("/jobs/{job_id}", {"": {"GET": self.get_job}}, durable=durable),
            _route("/spaces/{space_id}/jobs", {"": space_jobs}, durable=durable),
            _route("/spaces/{space_id}/jobs/poll", {"": {"POST": self.poll}}, durable=durable),
            _route("/spaces/{space_id}/push", {"": push}, durable=durable),
            WebSocketRoute("/realtime/spaces/{space_id}", rt.space, name="space_stream"),
            WebSocketRoute("/realtime/{job_id}", rt.job, name="job_stream"),
        ]
        self._prefix = prefix
        for route in routes:
            assert isinstance(route, Route | WebSocketRoute)
            route.path = prefix + route.path
            route.path_regex, route.path_format, route.param_convertors = compile_path(route.path)
        return routes

    # -- helpers -----------------------------------------------------------------

    async def _durable(self) -> None:
        await self._s.store.durable()

    def _auth(self, request: Request, *scopes: str, space_id: str | None = None) -> Principal:
        principal = self._s.keyring.authenticate(key_from_headers(request.headers))
        principal.require(*scopes, space_id=space_id)
        return principal

    async def _json(self, request: Request, *, optional: bool = False) -> Any:
        body = await read_body(request, self._s.config.max_request_bytes)
        if optional and not body.strip():
            return {}
        return parse_json(body)

    def _job_exists(self, job_id: str, space_id: str) -> None:
        """404 for an unknown job, 403 for one of another space."""
        load_job(self._s.store.conn, job_id, space_id)

    # -- producer and read side --------------------------------------------------

    async def create_jobs(self, request: Request) -> Response:
        space_id = request.path_params["space_id"]
        self._auth(request, "jobs:create", space_id=space_id)
        data = await self._json(request)
        bulk = isinstance(data, list)
        items = data if bulk else [data]
        if bulk and not items:
            raise bad_request("body: the array holds no job specs")
        if len(items) > self._s.config.max_bulk_jobs:
            raise bad_request(f"body: at most {self._s.config.max_bulk_jobs} jobs per request")
        now = self._s.config.clock.now_ms()
        specs = [self._spec(item, f"[{i}]" if bulk else "", now) for i, item in enumerate(items)]
        await refuse_resolved(
            self._s.config.resolver,
            [
                (f"[{i}].callbackUrl" if bulk else "callbackUrl", spec.callback_url)
                for i, spec in enumerate(specs)
            ],
        )
        jobs = self._s.engine.create(space_id, specs)
        stream = self._stream_prefix(request)
        refs = [
            {
                "id": j["id"],
                "spaceId": space_id,
                "status": j["status"],
                "realtimeUrl": stream + j["id"],
            }
            for j in jobs
        ]
        return JSONResponse(refs if bulk else refs[0], status_code=201)

    def _stream_prefix(self, request: Request) -> str:
        """``ws://host/api/v1/realtime/`` as the client reached us.

        Built from the scope as Starlette's ``url_for`` would, without its routing walk and
        without a cache keyed by whatever ``Host`` clients send.
        """
        scope = request.scope
        scheme = "wss" if scope.get("scheme") in {"https", "wss"} else "ws"
        return f"{scheme}://{host(request)}{scope.get('root_path', '')}{self._prefix}/realtime/"

    def _spec(self, item: object, where: str, now: int) -> NewJob:
        spec = validate(JobSpecIn, item, where)
        prefix = f"{where}." if where else ""
        payload = dumps(spec.payload)
        limit = self._s.config.max_payload_bytes
        if len(payload) > limit // 4 and len(payload.encode()) > limit:
            raise too_large(limit, f"{prefix}payload")
        scheduled_for = None
        if spec.scheduledFor is not None:
            scheduled_for = timestamp(spec.scheduledFor, f"{prefix}scheduledFor")
            if scheduled_for <= now:
                raise bad_request(f"{prefix}scheduledFor: must be in the future")
        if spec.callbackUrl is not None:
            outbound_url(spec.callbackUrl, f"{prefix}callbackUrl")
        headers = None
        if spec.callbackHeaders is not None:
            outbound_headers(spec.callbackHeaders, f"{prefix}callbackHeaders")
            headers = dumps(spec.callbackHeaders)
        return NewJob(
            spec.name, payload, spec.maxRetries, spec.timeoutSeconds,
            scheduled_for, spec.callbackUrl, headers,
        )  # fmt: skip

    async def list_jobs(self, request: Request) -> Response:
        space_id = request.path_params["space_id"]
        self._auth(request, "jobs:read", space_id=space_id)
        status = request.query_params.get("status") or None
        if status is not None and status not in STATUSES:
            raise bad_request(f"status: must be one of {', '.join(STATUSES)}")
        limit = int_param(request, "limit", 50, minimum=1, clamp=100)
        offset = int_param(request, "offset", 0)
        assert limit is not None
        assert offset is not None
        before = request.query_params.get("before") or None
        return JSONResponse(self._s.reader.jobs(space_id, status, limit, offset, before))

    async def get_job(self, request: Request) -> Response:
        principal = self._auth(request, "jobs:read")
        if request.query_params.get("eventsLimit") == "":  # a number or nothing, as documented
            raise bad_request("eventsLimit: must be an integer")
        events = int_param(request, "eventsLimit", EVENTS_DEFAULT, minimum=1, clamp=EVENTS_MAX)
        assert events is not None
        document = self._s.reader.job(
            request.path_params["job_id"],
            principal.space_id,
            events=events,
            before=request.query_params.get("eventsBefore") or None,
        )
        return JSONResponse(document)

    async def get_progress(self, request: Request) -> Response:
        principal = self._auth(request, "jobs:read:progress")
        job_id = request.path_params["job_id"]
        return JSONResponse(self._s.reader.progress(job_id, principal.space_id))

    async def get_logs(self, request: Request) -> Response:
        principal = self._auth(request, "jobs:read")
        level = request.query_params.get("level") or None
        if level is not None and level not in LEVELS:
            raise bad_request(f"level: must be one of {', '.join(LEVELS)}")
        q = request.query_params.get("q") or None
        if q is not None and len(q) > 1000:
            raise bad_request("q: must be at most 1000 characters")
        limit = int_param(request, "limit", 100, minimum=1, clamp=1000)
        assert limit is not None
        page = self._s.reader.logs(
            request.path_params["job_id"],
            principal.space_id,
            after=int_param(request, "after", None),
            before=int_param(request, "before", None),
            limit=limit,
            level=level,
            q=q,
        )
        return JSONResponse(page)

    # -- worker side -------------------------------------------------------------

    async def poll(self, request: Request) -> Response:
        space_id = request.path_params["space_id"]
        self._auth(request, "jobs:poll", space_id=space_id)
        spec = validate(PollIn, await self._json(request, optional=True))
        body = self._s.engine.poll(space_id, spec.count, spec.filter(), _render_poll)
        return _json_response(body)

    async def job_action(self, request: Request, action: str) -> Response:
        job_id = request.path_params["job_id"]
        scope, shape = _ACTIONS[action]
        space_id = self._auth(request, scope).space_id
        try:
            data = await self._json(request, optional=shape in {"nothing", "complete", "kill"})
            arg = WORKER_BODIES[shape](data)
            check_worker_body(action, arg, self._s.config)
        except ApiError:
            self._job_exists(job_id, space_id)
            raise
        engine = self._s.engine
        if action == "claim":
            return _json_response(engine.claim(job_id, space_id, _render_descriptor))
        if action == "ack":
            job = engine.ack(job_id, space_id)
        elif shape in {"nothing", "progress", "object"}:  # keepalive, progress, checkpoint, event
            job = engine.touch(job_id, space_id, action, arg)
        elif action == "complete":
            job = engine.complete(job_id, space_id, arg)
        elif action == "fail":
            job = engine.fail(job_id, space_id, arg)
        else:
            job = engine.kill(job_id, space_id, arg)
        return JSONResponse(worker_reply(job))

    async def post_logs(self, request: Request) -> Response:
        # DECIDED: logs take jobs:event or jobs:progress.
        space_id = self._auth(request, "jobs:event", "jobs:progress").space_id
        job_id = request.path_params["job_id"]
        try:
            lines = self._log_lines(await self._log_body(request))
        except ApiError:
            self._job_exists(job_id, space_id)
            raise
        if not lines:
            self._job_exists(job_id, space_id)
            return JSONResponse({"accepted": 0, "firstSeq": None, "lastSeq": None})
        first, last = self._s.engine.append_logs(job_id, space_id, lines)
        return JSONResponse({"accepted": len(lines), "firstSeq": first, "lastSeq": last})

    async def _log_body(self, request: Request) -> bytes:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media and media not in _NDJSON_TYPES:
            raise ApiError(415, "unsupported_media_type", "logs: send application/x-ndjson")
        limit = self._s.config.max_request_bytes
        body = await read_body(request, limit)
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding == "gzip":
            return gunzip(body, limit)
        if encoding not in {"identity", ""}:
            raise ApiError(415, "unsupported_media_type", "Content-Encoding: use gzip or none")
        return body

    def _log_lines(self, body: bytes) -> list[LogLine]:
        now = self._s.config.clock.now_ms()
        lines: list[LogLine] = []
        for number, raw in enumerate(body.split(b"\n"), start=1):
            if not raw.strip():
                continue
            if len(lines) >= _MAX_LOG_LINES:
                raise bad_request(f"at most {_MAX_LOG_LINES} log lines per request")
            where = f"line {number}"
            entry = validate(LogLineIn, parse_json(raw, where), where)
            stamp = now if entry.ts is None else timestamp(entry.ts, f"{where}.ts")
            metadata = None if entry.metadata is None else dumps(entry.metadata)
            level = LEVELS.index(entry.level)
            lines.append(LogLine(stamp, level, entry.message, entry.source, metadata))
        return lines

    # -- push settings (local server only) ---------------------------------------

    async def get_push(self, request: Request) -> Response:
        space_id = request.path_params["space_id"]
        self._auth(request, "space:admin", space_id=space_id)
        return JSONResponse(_push_json(self._s.engine.push.get(space_id, PushSettings())))

    async def put_push(self, request: Request) -> Response:
        space_id = request.path_params["space_id"]
        self._auth(request, "space:admin", space_id=space_id)
        spec = validate(PushSettingsIn, await self._json(request))
        if spec.url:
            outbound_url(spec.url, "url")
        outbound_headers(spec.headers, "headers")
        await refuse_resolved(self._s.config.resolver, [("url", spec.url)])
        # An empty jobNames list means no filter, like an absent one; the answer says null.
        names = None if not spec.jobNames else frozenset(spec.jobNames)
        settings = PushSettings(spec.url or None, dict(spec.headers), names)
        self._s.engine.set_push(space_id, settings)
        return JSONResponse(_push_json(settings))


Handler = Callable[[Request], Awaitable[Response]]


def _route(
    path: str,
    table: dict[str, dict[str, Handler]],
    param: str | None = None,
    durable: Callable[[], Awaitable[None]] | None = None,
) -> Route:
    """A route whose handler is chosen by a path parameter (or "") and the method.

    Dispatching here rather than with one Starlette route per method keeps the router's
    scan short, and lets a 405 list in ``Allow`` every method that path accepts.
    """

    async def endpoint(request: Request) -> Response:
        handlers = table.get(request.path_params[param] if param else "")
        if handlers is None:
            raise ApiError(404, "not_found", "No such endpoint")
        handler = handlers.get("GET" if request.method == "HEAD" else request.method)
        if handler is None:
            allow = ", ".join(sorted({*handlers, *(["HEAD"] if "GET" in handlers else [])}))
            raise HTTPException(405, headers={"Allow": allow})
        response = await handler(request)
        if durable is not None:
            await durable()  # answer only what is committed
        return response

    route = Route(path, endpoint)
    route.methods = None  # every method reaches `endpoint`, which answers 405 itself
    return route


def _render_poll(jobs: list[dict[str, Any]]) -> bytes:
    return render({"jobs": [descriptor(job) for job in jobs]})


def _render_descriptor(job: dict[str, Any]) -> bytes:
    return render(descriptor(job))


def _json_response(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _push_json(settings: PushSettings) -> dict[str, Any]:
    names = None if settings.job_names is None else sorted(settings.job_names)
    return {"url": settings.url, "headers": settings.headers or {}, "jobNames": names}
