"""``emit-push dev APP`` and ``emit-push worker APP``: your app against a local server.

``dev`` starts the local emit server and serves the app's push endpoint on uvicorn in a
child process (restarted on code changes with ``--reload``), points the space's push at
it with a fresh push secret, and prints the URLs, keys and a command to create a job.
``worker`` runs the same handlers as a polling worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from ._cli_common import CliError, add_client_flags, client_settings, explained, load_app

__all__ = ["add_dev_parsers", "run_dev", "run_worker", "serve_push"]


def add_dev_parsers(sub: Any) -> None:
    dev = sub.add_parser("dev", help="run your app's push endpoint against a local emit server")
    dev.add_argument("app", metavar="APP", help="module:attr or path/to/file.py[:attr]")
    dev.add_argument("--port", type=int, default=8788, help="the app's port (default 8788)")
    dev.add_argument("--server-port", type=int, default=8787, help="the emit server's port")
    dev.add_argument(
        "--db", default=None, help="the server's SQLite file (default .emit/dev.sqlite3)"
    )
    dev.add_argument("--reload", action="store_true", help="restart the app when code changes")

    worker = sub.add_parser("worker", help="run your app's handlers as a polling worker")
    worker.add_argument("app", metavar="APP", help="module:attr or path/to/file.py[:attr]")
    worker.add_argument("--count", type=int, default=1, help="jobs run at once (1-50)")
    worker.add_argument("--types", nargs="*", help="job names to take (default: the app's)")
    worker.add_argument("--poll-interval", type=float, default=1.0)
    worker.add_argument("--max-backoff", type=float, default=15.0)
    worker.add_argument("--grace-period", type=float, default=30.0)
    add_client_flags(worker)


def run_worker(args: argparse.Namespace) -> int:
    from ._app import EmitPush

    for key, value in client_settings(args).items():
        if value:
            os.environ[f"EMIT_{key.upper()}"] = value
    app: EmitPush = load_app(args.app)
    with explained(args.base_url):
        app.prepare()
        print(f"emit-push worker: {', '.join(sorted(app.handlers))} (Ctrl-C stops)", flush=True)
        asyncio.run(
            app.run_polling(
                types=args.types or None,
                count=args.count,
                poll_interval=args.poll_interval,
                max_backoff=args.max_backoff,
                grace_period=args.grace_period,
            )
        )
    print("emit-push worker stopped", flush=True)
    return 0


def serve_push(target: str, port: int) -> None:
    """Child of ``dev``: the app's push endpoint on uvicorn; prints a line once listening."""
    from .cli import bind, uvicorn_server_for

    app = load_app(target)
    sock = bind("127.0.0.1", port)
    server = uvicorn_server_for(app.asgi(), on_started=lambda: print("ready", flush=True))
    server.run(sockets=[sock])


def run_dev(args: argparse.Namespace) -> int:
    from .cli import base_url, bind, uvicorn_server
    from .server import DEFAULT_DB_PATH, EmitServer, ServerConfig

    load_app(args.app)  # fail here, with one line, if the app cannot be loaded
    emit = EmitServer(ServerConfig(db_path=args.db or DEFAULT_DB_PATH))
    sock = bind("127.0.0.1", args.server_port)
    api = base_url(sock)
    app_url = f"http://127.0.0.1:{args.port}/"
    secret = secrets.token_urlsafe(24)
    child = _AppProcess(args.app, args.port, secret, api, emit)
    ready = threading.Event()
    server = uvicorn_server(emit, on_started=ready.set)

    async def main() -> None:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        await asyncio.to_thread(ready.wait)
        child.start()
        await asyncio.to_thread(child.wait_ready)
        await _point_push(api, emit, app_url, secret)
        _banner(emit, api, app_url, args)
        watcher = asyncio.create_task(_watch(child)) if args.reload else None
        try:
            await serving
        finally:
            if watcher is not None:
                watcher.cancel()
            child.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        child.stop()
    print("emit-push dev stopped", flush=True)
    return 0


class _AppProcess:
    """The app's push endpoint in a child process; restartable."""

    def __init__(self, app: str, port: int, secret: str, api: str, emit: Any) -> None:
        self._command = [sys.executable, "-m", "emit_push._cli_dev", app, str(port)]
        self._emit = emit
        self._env = {**os.environ, "EMIT_BASE_URL": api, "EMIT_PUSH_SECRET": secret}
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        creds = self._emit.credentials
        env = {**self._env, "EMIT_SPACE_ID": creds.space_id, "EMIT_API_KEY": creds.worker_key}
        self._proc = subprocess.Popen(self._command, env=env, stdout=subprocess.PIPE, text=True)

    def wait_ready(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.strip() == "ready":
                threading.Thread(target=self._relay, daemon=True).start()
                return
        raise CliError("the app stopped while starting; see its error above")

    def _relay(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            print(line, end="", flush=True)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()

    def restart(self) -> None:
        self.stop()
        self.start()
        self.wait_ready()


async def _watch(child: _AppProcess) -> None:
    from watchfiles import PythonFilter, awatch

    async for changes in awatch(Path.cwd(), watch_filter=PythonFilter()):
        names = ", ".join(sorted({Path(path).name for _, path in changes}))
        print(f"emit-push dev: {names} changed, restarting the app", flush=True)
        await asyncio.to_thread(child.restart)


async def _point_push(api: str, emit: Any, url: str, secret: str) -> None:
    creds = emit.credentials
    settings = {"url": url, "headers": {"Authorization": f"Bearer {secret}"}}
    async with httpx.AsyncClient(
        headers={"x-api-key": creds.producer_key}, trust_env=False
    ) as http:
        answer = await http.put(f"{api}/spaces/{creds.space_id}/push", json=settings)
        answer.raise_for_status()


def _banner(emit: Any, api: str, app_url: str, args: argparse.Namespace) -> None:
    c = emit.credentials
    reloading = ", reloading on changes" if args.reload else ""
    print(
        f"emit local server  {api}\n"
        f"your app's pushes  {app_url}  ({args.app}{reloading})\n"
        f"  space id        {c.space_id}\n"
        f"  worker key      {c.worker_key}\n"
        f"  producer key    {c.producer_key}\n"
        f"\nCreate a job (in another shell):\n"
        f"  EMIT_BASE_URL={api} EMIT_SPACE_ID={c.space_id} EMIT_API_KEY={c.producer_key} \\\n"
        f"    emit-push jobs create NAME --payload '{{}}' --wait\n"
        "\nPress Ctrl-C to stop.",
        flush=True,
    )


if __name__ == "__main__":  # the app's process under `emit-push dev`
    try:
        serve_push(sys.argv[1], int(sys.argv[2]))
    except CliError as exc:
        print(f"emit-push: {exc}", file=sys.stderr)
        sys.exit(2)
