"""1 request in 3 from the worker answered 503 before the server acts: every job is
completed, its handler ran once, nothing is stranded, and every log line is stored once.

The app's client goes through a FaultyServer that fails every kind of request it sends
(claims, acks, progress, checkpoints, logs, completes, polls, and the read-backs that
settle them). Jobs have a long timeout, so a job a run leaves behind stays where it was
left and is reported, rather than run again later.
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

pytestmark = pytest.mark.slow  # retries back off in real time: a few seconds each

JOBS = 30
SPEC = {"timeoutSeconds": 60}  # longer than the test: nothing times out meanwhile


async def test_pushes(emit: EmitServer, admin: httpx.AsyncClient, faulty_app: MakeApp) -> None:
    faults = FaultyServer(emit.app, kind="before", chance=1 / 3, seed=1)
    app = faulty_app(faults)
    runs = Runs()
    register(app, runs)
    async with PushService(app, emit, SPACE) as service:
        ids = await create_jobs(admin, SPACE, JOBS, **SPEC)
        quiet = await settle(service.idle, timeout=20)
    tally = await Tally.read(admin, ids, runs)
    seen = f"injected {dict(faults.injected)}; push answers {dict(service.answers)}"
    assert quiet, f"pushes still going after 20 s; {seen}"
    assert tally.problems() == {}, f"{tally.describe()}\n{seen}"
    assert (service.gave_up, service.raised) == ([], []), seen


async def test_polling(emit: EmitServer, admin: httpx.AsyncClient, faulty_app: MakeApp) -> None:
    faults = FaultyServer(emit.app, kind="before", chance=1 / 3, seed=2)
    app = faulty_app(faults)
    runs = Runs()
    register(app, runs)

    async def finished() -> bool:
        return not await live_jobs(admin, SPACE)

    async with polling(app, count=10) as worker:
        ids = await create_jobs(admin, SPACE, JOBS, **SPEC)
        await settle(lambda: worker.done() or finished(), timeout=10)
    tally = await Tally.read(admin, ids, runs)
    assert worker.exception() is None  # stopped, not crashed
    assert tally.problems() == {}, f"{tally.describe()}\ninjected {dict(faults.injected)}"
