"""Local-server-only API calls (DECIDED), mounted under ``/api/v1`` beside the contract's.

emit.run shows these things in its own dashboard; the local server offers them as plain
API calls, so that its dashboard page calls nothing a script could not (DESIGN: the page
has no private endpoints). Keys are the usual ones, scopes as listed:

- ``GET /spaces/:spaceId`` (``space:admin``): ``{"id", "createdAt", "counts", "names",
  "keys"}``: jobs per status, the job names in use, and the space's keys with their
  scopes, each key masked (``emit_AbCd…WxYz``), never in full.
- ``GET /spaces/:spaceId/jobs/search?name=&status=&limit=&before=`` (``jobs:read``): the
  jobs of one ``name`` (required), newest first, a bare array of job documents paged like
  ``GET /spaces/:spaceId/jobs`` (``limit`` default 50, max 100; ``before``: a job id).
- ``GET /spaces/:spaceId/deliveries?limit=`` (``space:admin``): the latest push attempts,
  newest first, ``{"deliveries": [{"jobId", "jobName", "type", "attemptNumber",
  "createdAt", "data"}]}`` where ``type`` is ``push_sent`` or ``push_failed`` and ``data``
  the attempt's event data (``url``, ``statusCode``, ``error``, ``retryAttempt``,
  ``willRetry``, ``hint`` where given). It looks at the space's newest 500 jobs and its
  newest 500 pending ones, so it costs the same however many jobs the space holds.
- ``POST /spaces/:spaceId/repush`` (``space:admin``) ``{"jobIds": [id, ...]}`` (1 to 100):
  push these pending jobs again now, as a new first attempt; ``{}``: every pending job of
  the space (what ``emit-push dev`` does after a restart). All or nothing: 404 for an
  unknown job, 409 ``invalid_state`` for one that is not pending or whose name the push
  settings leave out, 409 ``push_off`` when the space has no push URL. Answers
  ``{"queued": n}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ._auth import Principal, key_from_headers
from ._bootstrap import Credentials
from ._errors import ApiError, bad_request, conflict
from ._http import int_param, parse_json, read_body
from ._ids import format_ts
from ._queries import load_job
from ._scopes import ADMIN
from ._services import Services
from ._wire import STATUSES, job_document, loads

__all__ = ["KeyInfo", "LocalApi", "LocalServices", "mask_key"]

KeyInfo = dict[str, Any]
"""One key as ``GET /spaces/:spaceId`` lists it: name, masked key, scopes, createdAt."""

_RECENT_JOBS = 500  # the deliveries endpoint looks at this many newest (and pending) jobs
_MAX_REPUSH = 100


class LocalServices(Services, Protocol):
    @property
    def credentials(self) -> Credentials: ...


def mask_key(key: str) -> str:
    """Enough of a key to tell it from another, never enough to use it."""
    if len(key) < 24:
        return key[:4] + "…"
    return f"{key[:9]}…{key[-4:]}"


class LocalApi:
    """The calls of the module docstring. ``extra_keys(space_id)`` lists keys that live in
    memory only (the dashboard's), shown with the stored ones."""

    def __init__(
        self, server: LocalServices, extra_keys: Callable[[str], Iterable[KeyInfo]]
    ) -> None:
        self._s = server
        self._extra_keys = extra_keys

    def routes(self, prefix: str) -> list[BaseRoute]:
        return [
            Route(f"{prefix}/spaces/{{space_id}}", self.space, methods=["GET"]),
            Route(f"{prefix}/spaces/{{space_id}}/jobs/search", self.search, methods=["GET"]),
            Route(f"{prefix}/spaces/{{space_id}}/deliveries", self.deliveries, methods=["GET"]),
            Route(f"{prefix}/spaces/{{space_id}}/repush", self.repush, methods=["POST"]),
        ]

    def _auth(self, request: Request, scope: str) -> str:
        space_id: str = request.path_params["space_id"]
        principal: Principal = self._s.keyring.authenticate(key_from_headers(request.headers))
        principal.require(scope, space_id=space_id)
        return space_id

    async def space(self, request: Request) -> Response:
        space_id = self._auth(request, ADMIN)
        db = self._s.store.conn
        row = db.execute("SELECT created_at FROM spaces WHERE id = ?", (space_id,)).fetchone()
        keys: list[KeyInfo] = [
            {
                "name": name,
                "key": mask_key(key),
                "scopes": loads(scopes),
                "createdAt": format_ts(created_at),
            }
            for key, name, scopes, created_at in db.execute(
                "SELECT key, name, scopes, created_at FROM api_keys WHERE space_id = ?"
                " ORDER BY created_at, name",
                (space_id,),
            )
        ]
        keys += self._extra_keys(space_id)
        return JSONResponse(
            {
                "id": space_id,
                "createdAt": None if row is None else format_ts(row[0]),
                "counts": self._s.reader.counts(space_id),
                "names": self._names(space_id),
                "keys": keys,
            }
        )

    def _names(self, space_id: str) -> list[str]:
        """The job names in use, found by skipping through ``jobs_by_name`` (space, status,
        name, ...) one name at a time per status: a cost per name, not per job."""
        skip = (
            "WITH RECURSIVE n(name) AS ("
            " SELECT MIN(name) FROM jobs WHERE space_id = ?1 AND status = ?2"
            " UNION ALL SELECT (SELECT MIN(name) FROM jobs"
            "  WHERE space_id = ?1 AND status = ?2 AND name > n.name)"
            " FROM n WHERE n.name IS NOT NULL LIMIT 1000"
            ") SELECT name FROM n WHERE name IS NOT NULL"
        )
        names: set[str] = set()
        for status in STATUSES:
            names.update(row[0] for row in self._s.store.conn.execute(skip, (space_id, status)))
        return sorted(names)

    async def search(self, request: Request) -> Response:
        space_id = self._auth(request, "jobs:read")
        name = request.query_params.get("name") or ""
        if not name:
            raise bad_request("name: required (all jobs: GET /spaces/:spaceId/jobs)")
        status = request.query_params.get("status") or None
        if status is not None and status not in STATUSES:
            raise bad_request(f"status: must be one of {', '.join(STATUSES)}")
        limit = int_param(request, "limit", 50, minimum=1, clamp=100)
        assert limit is not None
        db = self._s.store.conn
        bound = ""
        bound_args: tuple[Any, ...] = ()
        if before := request.query_params.get("before") or None:
            row = db.execute(
                "SELECT created_at FROM jobs WHERE id = ? AND space_id = ?", (before, space_id)
            ).fetchone()
            if row is None:
                raise bad_request("before: no job of this space has that id")
            bound, bound_args = " AND (created_at, id) < (?, ?)", (row[0], before)
        # One index range (jobs_by_name) per status, newest first, merged: without a status
        # the name alone is not a prefix of any index.
        order = " ORDER BY created_at DESC, id DESC LIMIT ?"
        arm = (
            "SELECT * FROM (SELECT * FROM jobs WHERE space_id = ? AND status = ? AND name = ?"
            f"{bound}{order})"
        )
        statuses = [status] if status else list(STATUSES)
        query = " UNION ALL ".join([arm] * len(statuses)) + order
        args = [v for s in statuses for v in (space_id, s, name, *bound_args, limit)]
        rows = db.execute(query, (*args, limit)).fetchall()
        return JSONResponse([job_document(row) for row in rows])

    async def deliveries(self, request: Request) -> Response:
        space_id = self._auth(request, ADMIN)
        limit = int_param(request, "limit", 20, minimum=1, clamp=100)
        newest = (
            "SELECT id FROM (SELECT id FROM jobs WHERE space_id = ?1 {}"
            " ORDER BY created_at DESC, id DESC LIMIT ?2)"
        )
        pending = "AND status = 'pending'"
        jobs = f"{newest.format('')} UNION {newest.format(pending)}"
        rows = self._s.store.conn.execute(
            "SELECT e.job_id, j.name, e.type, e.data, e.attempt_number, e.created_at"
            f" FROM job_events e JOIN jobs j ON j.id = e.job_id WHERE e.job_id IN ({jobs})"
            " AND e.type IN ('push_sent', 'push_failed') ORDER BY e.id DESC LIMIT ?3",
            (space_id, _RECENT_JOBS, limit),
        ).fetchall()
        deliveries = [
            {
                "jobId": job_id,
                "jobName": name,
                "type": kind,
                "attemptNumber": attempt,
                "createdAt": format_ts(at),
                "data": loads(data),
            }
            for job_id, name, kind, data, attempt, at in rows
        ]
        return JSONResponse({"deliveries": deliveries})

    async def repush(self, request: Request) -> Response:
        space_id = self._auth(request, ADMIN)
        body = await read_body(request, self._s.config.max_request_bytes)
        data = parse_json(body) if body.strip() else {}
        if not isinstance(data, dict):
            raise bad_request("body: must be a JSON object")
        ids = data.get("jobIds")
        if ids is not None and (
            not isinstance(ids, list)
            or not 1 <= len(ids) <= _MAX_REPUSH
            or not all(isinstance(i, str) and i for i in ids)
        ):
            raise bad_request(f"jobIds: must be 1 to {_MAX_REPUSH} job ids")
        engine = self._s.engine
        settings = engine.push.get(space_id)
        if settings is None or not settings.url:
            raise ApiError(
                409, "push_off", "Push is off for this space: set a URL (PUT /spaces/:id/push)"
            )
        if ids is None:
            queued = engine.repush_pending(space_id)
        else:
            db = self._s.store.conn
            jobs = [load_job(db, job_id, space_id) for job_id in dict.fromkeys(ids)]
            for job in jobs:
                if job["status"] != "pending":
                    raise conflict(job["id"], job["status"], "re-push")
                if not settings.wants(job["name"]):
                    raise ApiError(
                        409,
                        "invalid_state",
                        f"The space's push does not send jobs named {job['name']!r} (jobNames)",
                    )
            now = self._s.config.clock.now_ms()
            with self._s.store.write():
                queued = sum(engine.outbox.push_pending(job, now) for job in jobs)
        await self._s.store.durable()
        return JSONResponse({"queued": queued})
