"""The sweep: pending jobs whose push was lost, run as a push would have run them.

emit.run's push is best-effort (one attempt, its answer ignored), so in a push-only
setup a job whose only push failed would stay ``pending`` for good. A sweep claims the
pending jobs of the app's handlers through ``poll`` and runs each with
``runner.run_claimed``, exactly as a push runs it: a lost push costs a delay, not the
job. Claims decide, as between two pushes: a push that arrives for a job a sweep holds is
answered ``skipped``, and a sweep never receives a job that a push has claimed.

One pass (:func:`sweep`) takes one job at a time, as pushes do (one job per run), until
the queue of the app's job names is empty, ``max_jobs`` have run, or less than
``RESERVE`` seconds are left before the deadline (the platform's remaining time). A
failed poll ends the pass: it goes to the app's ``on_error`` with ``None`` for the job,
and the app's ``stop_on_error`` (or a refused key) raises it.

Where a pass comes from: on AWS Lambda an EventBridge schedule invokes the function
(``template.yaml``; ``adapters.aws_lambda`` recognises the event); on a long-running
server, ``EmitPush(sweep_every=60)`` makes the app's lifespan run a :class:`Sweeper`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from .._exceptions import EmitError
from .runner import ANY_NAME

if TYPE_CHECKING:
    from .push import PushResult
    from .runner import Runner

__all__ = ["RESERVE", "Sweeper", "sweep"]

RESERVE = 5.0
"""Seconds: with less time left before the deadline no job is claimed (it would be cut
short, and failed back)."""

log = logging.getLogger("emit_push")


async def sweep(
    runner: Runner,
    *,
    max_jobs: int = 10,
    deadline: float | None = None,
    stopping: asyncio.Event | None = None,
    abort: asyncio.Event | None = None,
) -> list[PushResult]:
    """One pass: claim and run pending jobs of ``runner``'s handlers, one at a time.

    ``deadline`` (``time.monotonic()``) bounds the pass and every run in it; ``stopping``
    ends the pass after the running job; ``abort`` stops that job and fails it back.
    Returns the result of each job run, in order.
    """
    from .._wire.endpoints import poll
    from .polling import poll_error

    if max_jobs < 1:
        raise ValueError("max_jobs must be at least 1")
    results: list[PushResult] = []
    if not runner.handlers:
        return results
    names = None if ANY_NAME in runner.handlers else sorted(runner.handlers)
    client = runner.client()
    while len(results) < max_jobs and not (stopping is not None and stopping.is_set()):
        if deadline is not None and deadline - time.monotonic() < RESERVE:
            break
        try:
            found = await client.send(poll(client.space_id, 1, names))
        except EmitError as exc:
            await poll_error(runner, exc)
            break
        if not found:
            break
        for descriptor in found:
            results.append(await runner.run_claimed(descriptor, deadline=deadline, abort=abort))
    if results:
        log.info("emit-push: the sweep ran %d pending job(s)", len(results))
    return results


class Sweeper:
    """A pass every ``every`` seconds (the first at once), until stopped: for servers.

    A pass that fails (a refused key, ``stop_on_error``) is logged, and the next one
    runs on time.
    """

    def __init__(self, runner: Runner, every: float) -> None:
        self.runner = runner
        self.every = every
        self.stopping = asyncio.Event()
        self.abort = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sweeping, on the running event loop."""
        self._task = asyncio.create_task(self._run(), name="emit-push-sweeps")

    async def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                await sweep(self.runner, stopping=self.stopping, abort=self.abort)
            except Exception:
                log.exception("emit-push: a sweep failed; the next one runs as planned")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.every)

    async def stop(self, grace_period: float = 30.0) -> None:
        """No new pass or claim; the running job gets ``grace_period`` seconds, then it is
        stopped and failed back (``worker stopped``), so that it is retried at once."""
        from .polling import fail_back_time

        self.stopping.set()
        task = self._task
        if task is None:
            return
        await asyncio.wait({task}, timeout=grace_period)
        if not task.done():
            self.abort.set()
            await asyncio.wait({task}, timeout=fail_back_time(self.runner))
        if not task.done():
            log.warning("emit-push: the sweep did not stop in time")
