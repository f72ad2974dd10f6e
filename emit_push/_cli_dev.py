"""``emit-push dev APP``: your app's push endpoint against a local emit server.

``dev`` starts the local emit server and serves the app's push endpoint on uvicorn in a
child process (restarted on code changes with ``--reload``), points the space's push at
it with a fresh push secret, and prints the URLs, keys and a command to create a job.
The app is imported in the child only: that is where its settings are. Each time the app
is ready, the jobs still pending (their pushes found no app while it restarted) are
pushed to it again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shlex
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from ._cli_common import CliError, app_folder
from ._cli_dev_app import AppProcess

__all__ = ["add_dev_parser", "run_dev"]

PUSHES_AT_ONCE = 8
"""Pending jobs pushed again concurrently after a restart (each answer waits for its job)."""


def add_dev_parser(sub: Any) -> None:
    dev = sub.add_parser("dev", help="run your app's push endpoint against a local emit server")
    dev.add_argument("app", metavar="APP", help="module:attr or path/to/file.py[:attr]")
    dev.add_argument("--port", type=int, default=8788, help="the app's port (default 8788)")
    dev.add_argument("--server-port", type=int, default=8787, help="the emit server's port")
    dev.add_argument(
        "--db", default=None, help="the server's SQLite file (default .emit/dev.sqlite3)"
    )
    dev.add_argument(
        "--reload",
        action="store_true",
        help="restart the app when a .py file changes (in the app file's folder, else here)",
    )


def run_dev(args: argparse.Namespace) -> int:
    from .cli import base_url, bind, check_database
    from .server import DEFAULT_DB_PATH, EmitServer, ServerConfig

    folder = _watchable(args.app) if args.reload else None
    db = args.db or DEFAULT_DB_PATH
    check_database(db)
    emit = EmitServer(ServerConfig(db_path=db))
    sock = bind("127.0.0.1", args.server_port, flag="--server-port")
    session = _Dev(args, emit, base_url(sock), folder)
    # Signals are the session's to answer (it stops the app, then the server); outside
    # asyncio.run they are ignored, so nothing interrupts the last steps of stopping.
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        asyncio.run(session.run(sock))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print("emit-push dev stopped", flush=True)
    return 0


def _watchable(target: str) -> Path:
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        raise CliError("--reload needs watchfiles: pip install watchfiles") from None
    return app_folder(target)


class _Dev:
    """One ``dev`` session: the local server, the app's process and, with --reload, a watch."""

    def __init__(self, args: argparse.Namespace, emit: Any, api: str, folder: Path | None):
        self.args = args
        self.emit = emit
        self.api = api
        self.folder = folder
        self.secret = secrets.token_urlsafe(24)
        # The app's settings: the space and its key exist once the server has started.
        env = {**os.environ, "EMIT_BASE_URL": api, "EMIT_PUSH_SECRET": self.secret}
        self.app = AppProcess(args.app, args.port, env)
        self.pushing: asyncio.Task[None] | None = None

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app.port}/"

    async def run(self, sock: socket.socket) -> None:
        from .cli import uvicorn_server

        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def on_signal(*_: object) -> None:
            loop.call_soon_threadsafe(stop.set)

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, on_signal)
        started = asyncio.Event()
        server = uvicorn_server(self.emit, on_started=started.set, on_signal=on_signal)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        work = asyncio.create_task(self._work(started))
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({serving, work, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if work.done():
                work.result()  # it only ends when the app did not start: its one-line error
        finally:
            work.cancel()
            stopping.cancel()
            await asyncio.gather(work, stopping, return_exceptions=True)
            await self.app.stop()  # first: its jobs in flight can still report to the server
            server.should_exit = True
            await serving
        if not server.started:
            raise CliError("the local emit server did not start (see above)")

    async def _work(self, server_started: asyncio.Event) -> None:
        async with contextlib.AsyncExitStack() as stack:
            changes = None
            if self.folder is not None:  # watching before the app loads: no change missed
                changes = await stack.enter_async_context(_changes(self.folder))
            await server_started.wait()
            c = self.emit.credentials
            api = await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=self.api, headers={"x-api-key": c.producer_key}, trust_env=False
                )
            )
            stack.push_async_callback(self._stop_pushing)
            self.app.env.update(EMIT_SPACE_ID=c.space_id, EMIT_API_KEY=c.worker_key)
            await self.app.start()
            settings = {"url": self.app_url, "headers": {"Authorization": f"Bearer {self.secret}"}}
            (await api.put(f"/spaces/{c.space_id}/push", json=settings)).raise_for_status()
            await self._ready(api)
            self._banner()
            if changes is None:
                await asyncio.Event().wait()  # until the session ends
            else:
                async for names in changes:
                    await self._restart(names, api)

    async def _restart(self, names: str, api: httpx.AsyncClient) -> None:
        """A failed restart is one line; the next change tries again."""
        print(f"emit-push dev: {names} changed, restarting the app", flush=True)
        await self._stop_pushing()
        await self.app.stop()
        try:
            await self.app.start()
        except (CliError, OSError) as exc:
            print(f"emit-push: {exc} (save a fix to restart the app)", file=sys.stderr, flush=True)
            return
        await self._ready(api)

    async def _ready(self, api: httpx.AsyncClient) -> None:
        """Say the app is ready; push it again the jobs whose pushes found no app."""
        try:
            pending = await _pending(api, self.emit.credentials.space_id)
        except httpx.HTTPError as exc:
            print(f"emit-push: cannot list the pending jobs: {exc}", file=sys.stderr, flush=True)
            pending = []
        ours = taken_by(pending, self.app.handlers)
        again = f"; pushing {len(ours)} pending job(s) again" if ours else ""
        print(f"emit-push dev: app ready (pid {self.app.pid}){again}", flush=True)
        if ours:
            self.pushing = asyncio.create_task(self._push(ours))

    async def _push(self, jobs: list[dict[str, Any]]) -> None:
        """A ``job.pending`` push for each job, as the server sends it (a duplicate is
        harmless: the app's claim fails and it answers ``skipped``)."""
        space_id = self.emit.credentials.space_id
        headers = {"Authorization": f"Bearer {self.secret}"}
        limit = asyncio.Semaphore(PUSHES_AT_ONCE)
        # No read timeout: the app answers when the job ends. Restarts and exit cancel this.
        timeout = httpx.Timeout(10.0, read=None)

        async def push(http: httpx.AsyncClient, job: dict[str, Any]) -> None:
            body = {
                "type": "job.pending",
                "jobId": job["id"],
                "spaceId": space_id,
                "name": job["name"],
                "attemptNumber": job["attemptNumber"],
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            async with limit:
                with contextlib.suppress(httpx.HTTPError):  # the job stays pending, as before
                    await http.post(self.app_url, json=body, headers=headers)

        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as http:
            await asyncio.gather(*(push(http, job) for job in jobs))

    async def _stop_pushing(self) -> None:
        if self.pushing is not None:
            self.pushing.cancel()
            await asyncio.gather(self.pushing, return_exceptions=True)
            self.pushing = None

    def _banner(self) -> None:
        c = self.emit.credentials
        watching = f", reloading on changes in {self.folder}" if self.folder else ""
        print(
            f"emit local server  {self.api}\n"
            f"your app's pushes  {self.app_url}  ({self.args.app}{watching})\n"
            f"  space id        {c.space_id}\n"
            f"  worker key      {c.worker_key}\n"
            f"  producer key    {c.producer_key}\n"
            f"\nCreate a job (in another shell):\n"
            f"  EMIT_BASE_URL={self.api} EMIT_SPACE_ID={c.space_id}"
            f" EMIT_API_KEY={c.producer_key} \\\n"
            f"    {executable()} jobs create {shlex.quote(self.app.example)}"
            " --payload '{}' --wait\n"
            "\nPress Ctrl-C to stop.",
            flush=True,
        )


def executable() -> str:
    """This ``emit-push``, as a fresh shell can run it: the script's path as it was run
    (``.venv/bin/emit-push`` works where the venv is not active), or ``python -m``."""
    script = Path(sys.argv[0])
    if script.is_file() and script.suffix != ".py":
        return shlex.quote(sys.argv[0])
    return f"{shlex.quote(sys.executable)} -m emit_push.cli"


def taken_by(jobs: list[dict[str, Any]], handlers: list[str]) -> list[dict[str, Any]]:
    """The jobs the app has a handler for (a ``"*"`` handler takes every job)."""
    return [job for job in jobs if "*" in handlers or job["name"] in handlers]


async def _pending(api: httpx.AsyncClient, space_id: str) -> list[dict[str, Any]]:
    """The space's pending jobs, oldest first (a job listed twice while pages shift, once)."""
    jobs: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        params: dict[str, str | int] = {"status": "pending", "limit": 100, "offset": offset}
        answer = await api.get(f"/spaces/{space_id}/jobs", params=params)
        answer.raise_for_status()
        page: list[dict[str, Any]] = answer.json()
        jobs.update((job["id"], job) for job in page)
        offset += len(page)
        if len(page) < 100:
            return list(reversed(jobs.values()))


@contextlib.asynccontextmanager
async def _changes(folder: Path) -> AsyncIterator[AsyncIterator[str]]:
    """Names of the .py files changed under ``folder``, one string per batch of changes.

    Entered, the watch is set up: a change from then on is reported, even one made
    before the first ``anext``.
    """
    from watchfiles import PythonFilter, awatch

    stop = asyncio.Event()
    # yield_on_timeout: the first (empty) answer says the watch is set up.
    batches = awatch(
        folder, watch_filter=PythonFilter(), stop_event=stop, yield_on_timeout=True,
        rust_timeout=200,
    )  # fmt: skip
    await anext(batches)  # changes before the app loads need no restart

    async def names() -> AsyncIterator[str]:
        async for batch in batches:
            if batch:
                yield ", ".join(sorted({Path(path).name for _, path in batch}))

    try:
        yield names()
    finally:
        stop.set()
        await batches.aclose()
