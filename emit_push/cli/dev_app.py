"""The app's process under ``emit-push dev``: started, restarted, and always stopped.

The parent (:class:`AppProcess`) and the child (:func:`serve_push`) share a socketpair,
the *link*. The child writes one line on it: ``ready {"port": ..., "handlers": [...]}``
once its push endpoint listens, or ``error <one line>`` when the app cannot be loaded or
served. It reads the link for the rest of its life, and takes its end (its parent gone,
even SIGKILLed) as SIGTERM: no app process outlives ``emit-push dev``.

The child runs in its own session: Ctrl-C in the terminal reaches ``dev`` alone, which
stops the app before the local server, so that jobs in flight can still report.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any

from .common import CliError, describe_error, load_app

if TYPE_CHECKING:
    from .._framework.app import EmitPush

__all__ = ["AppProcess", "example_job", "serve_push"]

STOP_TIMEOUT = 10.0
"""Seconds the app gets to finish the pushes it is answering before it is killed."""


class AppProcess:
    """The app's push endpoint in a child process; restartable, and always stoppable."""

    def __init__(self, target: str, port: int, env: Mapping[str, str]) -> None:
        self._target = target
        self.port = port
        self.env = {**env, "PYTHONUNBUFFERED": "1"}  # its prints show at once, even piped
        self._running: list[tuple[subprocess.Popen[bytes], socket.socket]] = []
        self.pid: int | None = None
        self.handlers: list[str] = []
        self.example = "example"
        """A job name for the banner's command: one the app takes, with ``{}`` if it can."""

    async def start(self) -> None:
        """Start the app and return once it listens; ``CliError`` with its error if not."""
        parent_end, child_end = socket.socketpair()
        with child_end:
            fd = child_end.fileno()
            command = [sys.executable, "-m", __name__, self._target, str(self.port), str(fd)]
            proc = subprocess.Popen(command, env=self.env, pass_fds=[fd], start_new_session=True)
        self._running.append((proc, parent_end))  # before any await: stop() always sees it
        parent_end.setblocking(False)
        status, _, detail = (await _read_line(parent_end)).partition(" ")
        if status == "ready":
            ready = json.loads(detail)
            self.pid, self.port, self.handlers = proc.pid, ready["port"], ready["handlers"]
            self.example = ready["example"]
            return
        if status == "error":
            raise CliError(detail)
        try:
            code: int | str = await asyncio.to_thread(proc.wait, STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            code = "none yet"
        raise CliError(f"the app exited while starting (exit code {code}); see its output above")

    async def stop(self) -> None:
        """Stop every app process started so far: SIGTERM, then SIGKILL after a while.

        A stop cancelled halfway leaves its process listed, for the next stop to finish.
        """
        while self._running:
            proc, link = self._running[0]
            if proc.poll() is None:
                proc.terminate()
                try:
                    await asyncio.to_thread(proc.wait, STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    await asyncio.to_thread(proc.wait)
            link.close()
            self._running.pop(0)
        self.pid = None


async def _read_line(link: socket.socket) -> str:
    """The child's status line, or "" when it ended without one."""
    loop = asyncio.get_running_loop()
    data = b""
    while not data.endswith(b"\n"):
        chunk = await loop.sock_recv(link, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def serve_push(target: str, port: int, link: socket.socket) -> int:
    """The child: load the app, serve its push endpoint on uvicorn, report on ``link``."""
    from .._exceptions import ConfigurationError
    from .serving import bind, uvicorn_server_for

    serving = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # While the app loads, stop at once. Once uvicorn serves, it handles the signal
        # itself, and raises it again after its graceful shutdown: then it is done.
        if not serving.is_set():
            raise SystemExit(0)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    link.set_inheritable(False)
    threading.Thread(target=_stop_when_orphaned, args=(link,), daemon=True).start()
    try:
        app = load_app(target)
        asgi = app.asgi()
        sock = bind("127.0.0.1", port)
    except (CliError, ConfigurationError) as exc:
        link.sendall(f"error {' '.join(str(exc).split())}\n".encode())
        return 2
    except Exception as exc:
        link.sendall(f"error cannot serve {target}: {describe_error(exc)}\n".encode())
        return 2

    def started() -> None:
        serving.set()
        ready: dict[str, Any] = {
            "port": sock.getsockname()[1],
            "handlers": sorted(app.handlers),
            "example": example_job(app),
        }
        link.sendall(f"ready {json.dumps(ready)}\n".encode())

    uvicorn_server_for(asgi, on_started=started).run(sockets=[sock])
    return 0


def example_job(app: EmitPush) -> str:
    """A name the app takes, preferring one whose payload may be ``{}`` (untyped, or
    every field with a default): the banner's command then works as pasted."""
    from .._framework.app import ANY_NAME

    names = sorted(name for name in app.handlers if name != ANY_NAME)
    for name in names:
        adapter = app.handlers[name].payload
        if adapter is not None:
            try:
                adapter.validate_python({})
            except ValueError:  # pydantic's ValidationError: this one needs fields
                continue
        return name
    return names[0] if names else "example"  # "*" takes any name


def _stop_when_orphaned(link: socket.socket) -> None:
    """The link's end means ``dev`` is gone or stopping: stop as on SIGTERM."""
    try:
        while link.recv(64):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":  # the app's process under `emit-push dev`
    sys.exit(serve_push(sys.argv[1], int(sys.argv[2]), socket.socket(fileno=int(sys.argv[3]))))
