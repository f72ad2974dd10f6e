"""``emit-push dev APP``: your app's push endpoint against a local emit server.

``dev`` starts the local emit server and serves the app's push endpoint on uvicorn in a
child process (restarted on code changes with ``--reload``), points the space's push at
it with a fresh push secret, and prints the URLs, keys and a command to create a job
(one of the app's, with a payload its handler accepts: ``payloads.example_job``). The app
prints one line per push it answers (``dev_app.reporting``).

The app is imported in the child only: that is where its settings are. Each time the app
is ready, the space's push settings name its port and its job names, and the server
pushes again the jobs still pending (their pushes found no app while it restarted).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shlex
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from .common import API_SUFFIX, CliError, api_url, app_folder, base_url_hint

__all__ = ["add_dev_parser", "run_dev"]


def add_dev_parser(sub: Any) -> None:
    dev = sub.add_parser(
        "dev",
        help="run your app's push endpoint against a local emit server",
        description=(
            "Start the local emit server and your app's push endpoint (on uvicorn, in a child"
            " process), point the space's push at it, and print the keys and a command that"
            " creates one of its jobs; then one line per push the app answers, until Ctrl-C."
            " Needs the server extra."
        ),
    )
    dev.add_argument("app", metavar="APP", help="module:attr or path/to/file.py[:attr]")
    dev.add_argument(
        "--port",
        type=int,
        default=8788,
        metavar="PORT",
        help="the app's port (default 8788; 0: any)",
    )
    dev.add_argument(
        "--server-port",
        type=int,
        default=8787,
        metavar="PORT",
        help="the emit server's port (default 8787; 0: any)",
    )
    dev.add_argument(
        "--db",
        default=None,
        metavar="PATH",
        help="the server's SQLite file (default .emit/dev.sqlite3)",
    )
    dev.add_argument(
        "--reload",
        action="store_true",
        help="restart the app when a .py file changes (in the app file's folder, else here)",
    )


def run_dev(args: argparse.Namespace) -> int:
    from ..server import DEFAULT_DB_PATH, EmitServer, ServerConfig
    from .serving import base_url, bind, check_database

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
        # Not at import: the child runs `python -m emit_push.cli.dev_app`, which must not
        # find itself imported already by its own package.
        from .dev_app import AppProcess

        self.app = AppProcess(args.app, args.port, env)

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app.port}/"

    async def run(self, sock: socket.socket) -> None:
        from .serving import uvicorn_server

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
            self.app.env.update(EMIT_SPACE_ID=c.space_id, EMIT_API_KEY=c.worker_key)
            await self.app.start()
            self._ready()
            self._banner()
            if changes is None:
                await asyncio.Event().wait()  # until the session ends
            else:
                async for names in changes:
                    await self._restart(names)

    async def _restart(self, names: str) -> None:
        """A failed restart is one line; the next change tries again."""
        print(f"emit-push dev: {names} changed, restarting the app", flush=True)
        await self.app.stop()
        try:
            await self.app.start()
        except (CliError, OSError) as exc:
            print(f"emit-push: {exc} (save a fix to restart the app)", file=sys.stderr, flush=True)
            return
        self._ready()

    def _ready(self) -> None:
        """Point the space's push at the app as it now is (its port, its job names), and
        have the server push it again the jobs whose pushes found no app; say so."""
        from ..server._records import PushSettings

        handlers = self.app.handlers
        names = None if "*" in handlers else frozenset(handlers)
        secret = {"Authorization": f"Bearer {self.secret}"}
        space_id = self.emit.credentials.space_id
        self.emit.engine.set_push(space_id, PushSettings(self.app_url, secret, names))
        count = self.emit.engine.repush_pending(space_id)
        again = f"; pushing {count} pending job(s) again" if count else ""
        print(f"emit-push dev: app ready (pid {self.app.pid}){again}", flush=True)
        if (elsewhere := _elsewhere(self.app.base_url, self.api)) is not None:
            print(f"emit-push dev: {elsewhere}", file=sys.stderr, flush=True)

    def _banner(self) -> None:
        c = self.emit.credentials
        watching = f", reloading on changes in {self.folder}" if self.folder else ""
        print(
            f"emit local server  {self.api}\n"
            f"your app's pushes  {self.app_url}  ({self.args.app}{watching})\n"
            f"the dashboard      {self.api.removesuffix(API_SUFFIX)}/dashboard/\n"
            f"  space id        {c.space_id}\n"
            f"  worker key      {c.worker_key}\n"
            f"  producer key    {c.producer_key}\n"
            f"\nCreate a job (in another shell):\n"
            f"  EMIT_BASE_URL={self.api} EMIT_SPACE_ID={c.space_id}"
            f" EMIT_API_KEY={c.producer_key} \\\n"
            f"    {executable()} jobs create {shlex.quote(self.app.example)}"
            f" --payload {shlex.quote(json.dumps(self.app.payload, ensure_ascii=False))}"
            " --wait\n"
            "\nPress Ctrl-C to stop.",
            flush=True,
        )


def _elsewhere(app_base_url: str | None, api: str) -> str | None:
    """The warning for an app whose API calls go elsewhere than this local server: its
    code (``base_url=``) or a ``.env`` it loads overrides the EMIT_BASE_URL dev gives it,
    and every push it takes is then claimed there (and fails)."""
    if app_base_url is None or api_url(app_base_url) == api_url(api):
        return None
    warning = (
        f"the app's API base URL is {app_base_url} (set in its code or a .env?), not this"
        f" local server's {api}: the jobs pushed to it cannot be claimed there"
    )
    if not api_url(app_base_url).endswith(API_SUFFIX):
        warning += f"; {base_url_hint(app_base_url)}"
    return warning


def executable() -> str:
    """This ``emit-push``, as a fresh shell can run it: the script's path as it was run
    (``.venv/bin/emit-push`` works where the venv is not active), or ``python -m``."""
    script = Path(sys.argv[0])
    if script.is_file() and script.suffix != ".py":
        return shlex.quote(sys.argv[0])
    return f"{shlex.quote(sys.executable)} -m emit_push.cli"


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
