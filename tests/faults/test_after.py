"""1 request in 3 from the worker passed on, acted on, and its answer lost (a 503 in its
place): no handler runs twice at once, and no job is left ``delivered`` or ``running``
once the runs are over and the jobs' timeouts have passed; the service's pushes (and
the polling worker) then carry every job to ``completed``.

A lost answer is a call of unknown fate: a claim or poll whose jobs nobody got (they come
back after their timeout, 2 s here), an ack, complete or log batch that landed unseen.
The push service re-pushes a job each time it enters ``pending`` again, as emit.run does.
"""

from __future__ import annotations

import httpx
import pytest

from emit_push.server import EmitServer
from tests.conftest import SPACE
from tests.faults.conftest import MakeApp
from tests.faults.workload import (
    PushService,
    Runs,
    Tally,
    create_jobs,
    live_jobs,
    polling,
    register,
    settle,
)
from tests.harnesses.faults import FaultyServer

pytestmark = pytest.mark.slow  # jobs whose claim was lost come back after their timeout

JOBS = 30
SPEC = {"timeoutSeconds": 2, "maxRetries": 10}
SETTLE = 20.0  # seconds: a job may need a few timeouts in a row


async def test_pushes(emit: EmitServer, admin: httpx.AsyncClient, faulty_app: MakeApp) -> None:
    faults = FaultyServer(emit.app, kind="after", chance=1 / 3, seed=3)
    app = faulty_app(faults)
    runs = Runs()
    register(app, runs, work=0.02)

    async def over() -> bool:  # nothing in flight, and no timer left to bring a job back
        return service.idle() and not await live_jobs(admin, SPACE, ("delivered", "running"))

    async with PushService(app, emit, SPACE) as service:
        ids = await create_jobs(admin, SPACE, JOBS, **SPEC)
        quiet = await settle(over, timeout=SETTLE)
    tally = await Tally.read(admin, ids, runs)
    context = f"injected {dict(faults.injected)}; push answers {dict(service.answers)}"
    tally.assert_settled(quiet, SETTLE, context)


async def test_polling(emit: EmitServer, admin: httpx.AsyncClient, faulty_app: MakeApp) -> None:
    faults = FaultyServer(emit.app, kind="after", chance=1 / 3, seed=4)
    app = faulty_app(faults)
    runs = Runs()
    register(app, runs, work=0.02)

    async def finished() -> bool:
        return not await live_jobs(admin, SPACE)

    async with polling(app, count=10) as worker:
        ids = await create_jobs(admin, SPACE, JOBS, **SPEC)
        quiet = await settle(lambda: worker.done() or finished(), timeout=SETTLE)
    tally = await Tally.read(admin, ids, runs)
    assert worker.exception() is None  # stopped, not crashed
    tally.assert_settled(quiet, SETTLE, f"injected {dict(faults.injected)}")
