"""The workload of the fault tests, shared with ``benchmarks/chaos.py``.

- :class:`Runs` and :func:`register`: a handler that writes ``LINES`` log lines, reports
  progress and a checkpoint, and counts its runs per job (and runs of one job at once);
- :class:`PushService`: emit.run's push side as modelled here: a push each time a job
  enters ``pending`` (created, retried, delivery timeout), sent again while the answer is
  5xx (a push is answered 5xx only when the claim could not be decided, so a re-delivery
  is safe), straight into ``app.handle_push``;
- :func:`polling`: the app's polling worker as a task, stopped on leaving the block;
- :class:`Tally`: what became of the jobs, read through a clean client;
- :func:`quicken`: a client's retry backoff scaled down, so that the short job timeouts
  used here stand for long ones (a 3 s timeout with the backoff / 10 is like a 30 s one).

The app's client goes through a ``FaultyServer`` (``tests/harnesses/faults.py``); the
admin client and the push service do not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from emit_push import AsyncEmitClient, EmitPush, Job
from emit_push.server import EmitServer
from tests.waiting import eventually

__all__ = [
    "LINES",
    "LIVE",
    "NAME",
    "PushService",
    "Runs",
    "Tally",
    "create_jobs",
    "line",
    "live_jobs",
    "polling",
    "quicken",
    "register",
    "settle",
]

NAME = "chaos"
LINES = 3
"""Log lines each run writes."""
LIVE = ("pending", "delivered", "running")
"""A job in one of these once the runs are over is stranded."""


def quicken(client: AsyncEmitClient, scale: float) -> AsyncEmitClient:
    """``client`` with its retry backoff (first wait, longest wait) scaled by ``scale``.

    The policy itself changes, not only the waits: a run's calls are retried until its
    deadline, and whether the next wait still fits is judged with the scaled delays.
    """
    config = client._driver.config
    policy = config.retry._replace(
        initial_delay=config.retry.initial_delay * scale,
        max_delay=config.retry.max_delay * scale,
    )
    client._driver.config = client._config = replace(config, retry=policy)
    return client


def line(job_id: str, n: int) -> str:
    return f"line {n} of {job_id}"


class Runs:
    """What the handler saw: runs per job, runs that began while another run of the same
    job was inside, and the log lines it wrote (by job and line number)."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.inside: Counter[str] = Counter()
        self.overlapping: Counter[str] = Counter()
        self.written: Counter[tuple[str, int]] = Counter()

    @property
    def twice(self) -> dict[str, int]:
        """Jobs whose handler ran more than once, with how many times."""
        return {job_id: n for job_id, n in self.count.items() if n > 1}


def register(app: EmitPush, runs: Runs, *, work: float = 0.0) -> None:
    """The handler of ``NAME`` jobs; ``work`` seconds of pretend work between its calls."""

    @app.on_job(NAME)
    async def chaos(job: Job) -> dict[str, str]:
        runs.count[job.id] += 1
        runs.inside[job.id] += 1
        if runs.inside[job.id] > 1:
            runs.overlapping[job.id] += 1

        def log(n: int) -> None:
            job.log.info(line(job.id, n))
            runs.written[job.id, n] += 1

        try:
            log(0)
            await job.progress(50, "halfway")
            await asyncio.sleep(work)
            log(1)
            await job.checkpoint({"step": 2})
            for n in range(2, LINES):
                log(n)
            return {"done": job.id}
        finally:
            runs.inside[job.id] -= 1


async def create_jobs(admin: httpx.AsyncClient, space: str, count: int, **spec: Any) -> list[str]:
    """``count`` jobs of ``NAME`` in one bulk create (up to 1000)."""
    ids: list[str] = []
    for start in range(0, count, 1000):
        specs = [{"name": NAME, **spec} for _ in range(start, min(count, start + 1000))]
        response = await admin.post(f"/spaces/{space}/jobs", json=specs)
        assert response.status_code == 201, response.text
        ids += [ref["id"] for ref in response.json()]
    return ids


async def live_jobs(
    admin: httpx.AsyncClient, space: str, statuses: tuple[str, ...] = LIVE
) -> dict[str, str]:
    """The space's jobs in ``statuses``: id to status."""
    found: dict[str, str] = {}
    for status in statuses:
        offset = 0
        while True:
            params = {"status": status, "limit": 100, "offset": offset}
            page = (await admin.get(f"/spaces/{space}/jobs", params=params)).json()
            found.update((job["id"], job["status"]) for job in page)
            if len(page) < 100:
                break
            offset += 100
    return found


async def settle(condition: Callable[[], Any], timeout: float) -> bool:
    """Whether ``condition`` came true within ``timeout`` seconds (no error if not)."""
    try:
        await eventually(condition, timeout=timeout, interval=0.02)
    except AssertionError:
        return False
    return True


class PushService:
    """Pushes jobs into ``app`` as emit.run would (see the module); ``async with`` it
    before the jobs are created. Follows the space's events in-process (the server's hub).

    ``concurrency``: pushes handled at once, the others wait their turn unclaimed (as
    requests queue at a server with that many workers); None: no limit.
    """

    def __init__(
        self,
        app: EmitPush,
        emit: EmitServer,
        space: str,
        *,
        max_tries: int = 50,
        concurrency: int | None = None,
    ) -> None:
        self.app = app
        self.emit = emit
        self.space = space
        self.max_tries = max_tries
        self.answers: Counter[int] = Counter()
        """Every answer's HTTP status (a raised exception counts as 500)."""
        self.results: Counter[str] = Counter()
        """The status of the last (non-5xx) answer to each push."""
        self.gave_up: list[str] = []
        """Jobs still answered 5xx after ``max_tries`` pushes in a row."""
        self.raised: list[BaseException] = []
        self._slots = asyncio.Semaphore(concurrency) if concurrency else None
        self._pushes: set[asyncio.Task[None]] = set()
        self._stack = contextlib.AsyncExitStack()

    @property
    def five_xx(self) -> int:
        return sum(n for status, n in self.answers.items() if status >= 500)

    def idle(self) -> bool:
        """No push in flight and no event unread: only a timer can move a job now."""
        return not self._pushes and self._subscriber.queue.empty()

    async def __aenter__(self) -> PushService:
        hub = self.emit.hub
        self._subscriber = self._stack.enter_context(hub.subscribe("space", self.space))
        follow = asyncio.create_task(self._follow(), name="push-service")
        self._stack.push_async_callback(_cancelled, follow)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()
        for task in list(self._pushes):
            await _cancelled(task)

    async def _follow(self) -> None:
        while True:
            item = await self._subscriber.queue.get()
            if not isinstance(item, tuple):
                raise RuntimeError("the push service fell behind the space's events")
            _, event = item
            if event.status == "pending" and event.type in ("created", "pending", "retried"):
                task = asyncio.create_task(self._push(event.job_id, event.job_name))
                self._pushes.add(task)
                task.add_done_callback(self._pushes.discard)

    async def _push(self, job_id: str, name: str) -> None:
        async with self._slots or contextlib.nullcontext():
            await self._deliver(job_id, name)

    async def _deliver(self, job_id: str, name: str) -> None:
        body = {"type": "job.pending", "jobId": job_id, "spaceId": self.space, "name": name}
        raw = json.dumps(body).encode()
        for _ in range(self.max_tries):
            try:
                result = await self.app.handle_push(raw, {"content-type": "application/json"})
            except Exception as exc:  # an answer of 500: the service tries again
                self.raised.append(exc)
                self.answers[500] += 1
                continue
            self.answers[result.http_status] += 1
            if result.http_status < 500:
                self.results[result.status] += 1
                return
        self.gave_up.append(job_id)


async def _cancelled(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@contextlib.asynccontextmanager
async def polling(app: EmitPush, **options: Any) -> AsyncIterator[asyncio.Task[None]]:
    """``app.run_polling(...)`` as a task while the block runs, stopped (gracefully) after;
    AssertionError if it does not stop within 10 s."""
    stop = asyncio.Event()
    options = {"count": 5, "poll_interval": 0.01, "max_backoff": 0.05, **options}
    task = asyncio.create_task(app.run_polling(stop=stop, handle_signals=False, **options))
    try:
        yield task
    finally:
        stop.set()
        done, _ = await asyncio.wait({task}, timeout=10)
        if not done:
            await _cancelled(task)
            raise AssertionError("the polling worker did not stop within 10 s of its stop event")


@dataclass
class Tally:
    """What became of the jobs, as a clean client reads them once the runs are over."""

    statuses: dict[str, str]
    logs: dict[str, list[str]]
    runs: Runs
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def read(cls, admin: httpx.AsyncClient, ids: list[str], runs: Runs) -> Tally:
        statuses: dict[str, str] = {}
        logs: dict[str, list[str]] = {}
        semaphore = asyncio.Semaphore(16)

        async def one(job_id: str) -> None:
            async with semaphore:
                statuses[job_id] = (await admin.get(f"/jobs/{job_id}")).json()["status"]
                page = await admin.get(f"/jobs/{job_id}/logs", params={"limit": 1000})
                logs[job_id] = [entry["message"] for entry in page.json()["logs"]]

        await asyncio.gather(*(one(job_id) for job_id in ids))
        return cls(statuses, logs, runs)

    @property
    def completed(self) -> int:
        return sum(status == "completed" for status in self.statuses.values())

    @property
    def stranded(self) -> dict[str, str]:
        """Jobs left pending, delivered or running: id to status."""
        return {job_id: s for job_id, s in self.statuses.items() if s in LIVE}

    @property
    def not_completed(self) -> dict[str, str]:
        return {job_id: s for job_id, s in self.statuses.items() if s != "completed"}

    def _lines(self, sign: int) -> dict[str, int]:
        found: Counter[str] = Counter()
        for job_id, stored in self.logs.items():
            copies = Counter(stored)
            for n in range(LINES):
                off = sign * (copies[line(job_id, n)] - self.runs.written[job_id, n])
                if off > 0:
                    found[job_id] += off
        return dict(found)

    @property
    def lines_lost(self) -> dict[str, int]:
        """Lines the handler wrote that are not stored, by job: how many."""
        return self._lines(-1)

    @property
    def lines_duplicated(self) -> dict[str, int]:
        """Lines stored more often than the handler wrote them, by job: how many extra."""
        return self._lines(+1)

    def problems(self) -> dict[str, Any]:
        """Everything that breaks "completed, ran once, nothing stranded, each line once"."""
        found = {
            "not completed": self.not_completed,
            "ran more than once": self.runs.twice,
            "never ran": [job_id for job_id in self.statuses if not self.runs.count[job_id]],
            "ran twice at once": dict(self.runs.overlapping),
            "lines lost": self.lines_lost,
            "lines stored more than once": self.lines_duplicated,
        }
        return {what: value for what, value in found.items() if value}

    def assert_settled(self, quiet: bool, waited: float, context: str) -> None:
        """After faults where a lost answer may run a job again: never twice at once, all
        settled within ``waited`` s (``quiet``), nothing stranded, every job completed."""
        seen = f"{self.describe()}\n{context}"
        assert dict(self.runs.overlapping) == {}, seen
        assert quiet, f"jobs still live {waited} s on\n{seen}"
        assert self.stranded == {}, seen
        assert self.not_completed == {}, seen

    def describe(self) -> str:
        """The problems, readably: how many jobs each, and a few of them with their status."""
        lines = [f"statuses {dict(Counter(self.statuses.values()))}"]
        for what, jobs in self.problems().items():
            shown = [
                f"{job_id} ({self.statuses[job_id]}, ran {self.runs.count[job_id]}x)"
                for job_id in list(jobs)[:4]
            ]
            more = f" +{len(jobs) - 4} more" if len(jobs) > 4 else ""
            lines.append(f"{what}: {len(jobs)} jobs: {', '.join(shown)}{more}")
        return "\n".join(lines)
