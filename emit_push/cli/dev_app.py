"""The app's process under ``emit-push dev``: started, restarted, and always stopped.

The parent (:class:`AppProcess`) and the child (:func:`serve_push`) share a socketpair,
the *link*. The child writes one line on it: ``ready {"port": ..., "handlers": [...]}``
once its push endpoint listens, or ``error <one line>`` when the app cannot be loaded or
served. It reads the link for the rest of its life, and takes its end (its parent gone,
even SIGKILLed) as SIGTERM: no app process outlives ``emit-push dev``.

The child runs in its own session: Ctrl-C in the terminal reaches ``dev`` alone, which
stops the app before the local server, so that jobs in flight can still report.

The child prints one line per push it answers (:func:`reporting`): the job's name, id and
attempt, how the run ended, how long it took, and the first line of its error. The
banner's example job comes with a payload its handler accepts (``payloads.example_job``).
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
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from types import FrameType
from typing import TYPE_CHECKING, Any

from .common import CliError, describe_error, first_line, load_app, show_job_lines
from .payloads import example_job

if TYPE_CHECKING:
    from .._framework.app import EmitPush

__all__ = ["AppProcess", "reporting", "run_line", "serve_push"]

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
        """A job name for the banner's command: one the app takes."""
        self.payload: Any = {}
        """A payload for it that its handler accepts."""
        self.base_url: str | None = None
        """The API base URL the app's claims go to (its settings may name their own)."""

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
            self.example, self.payload = ready["example"], ready["payload"]
            self.base_url = ready.get("base_url")
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
        show_job_lines()
        asgi = reporting(app.asgi())
        sock = bind("127.0.0.1", port)
    except (CliError, ConfigurationError) as exc:
        link.sendall(f"error {' '.join(str(exc).split())}\n".encode())
        return 2
    except Exception as exc:
        link.sendall(f"error cannot serve {target}: {describe_error(exc)}\n".encode())
        return 2

    def started() -> None:
        serving.set()
        name, payload = example_job(app)
        ready: dict[str, Any] = {
            "port": sock.getsockname()[1],
            "handlers": sorted(app.handlers),
            "example": name,
            "payload": payload,
            "base_url": _base_url(app),
        }
        link.sendall(f"ready {json.dumps(ready)}\n".encode())

    uvicorn_server_for(asgi, on_started=started).run(sockets=[sock])
    return 0


def _base_url(app: EmitPush) -> str | None:
    """Where the app's API calls go: dev sets EMIT_BASE_URL, but its code (``base_url=``)
    or a ``.env`` it loads may say otherwise. Read in the serving loop, whose client it
    makes (the one its pushes then use)."""
    try:
        return app.client().base_url
    except Exception:  # its settings are checked already; this is only for a warning
        return None


ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]
_MAX_ANSWER = 64 * 1024  # push answers are small; more is not read for the line


def reporting(asgi: ASGIApp, say: Callable[[str], None] | None = None) -> ASGIApp:
    """``asgi``, printing one line per POST it answers (a push): see :func:`run_line`.

    The line is made of the push's answer, which says how the run ended: the app's own
    code and middleware stay as they are, and the line is out once the job is.
    """
    out = say or _say

    async def app(
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await asgi(scope, receive, send)
            return
        started = time.monotonic()
        status = 0
        body = bytearray()

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and len(body) < _MAX_ANSWER:
                body.extend(message.get("body", b""))
            await send(message)

        try:
            await asgi(scope, receive, sending)
        finally:
            if status:
                line = run_line(status, bytes(body), time.monotonic() - started)
                if line is not None:
                    out(line)

    return app


def run_line(http_status: int, answer: bytes, seconds: float) -> str | None:
    """One line for a push's answer: ``name id #attempt outcome in 0.12s: error``.

    A refused push says why (``push refused (401 unauthorized): ...``); an answer that is
    not the push protocol's JSON, its status; ``accepted`` (run after the answer) nothing.
    """
    from .._exceptions import escape_surrogates

    try:
        body = json.loads(answer)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = first_line(answer.decode(errors="replace"))
        return f"push answered {http_status}" + (f": {text}" if text else "")
    outcome = body.get("status")
    if outcome == "accepted":
        return None
    error, reason = first_line(body.get("error")), first_line(body.get("reason"))
    if not isinstance(outcome, str):
        code = body.get("code")
        head = f"{http_status} {code}" if isinstance(code, str) else str(http_status)
        return escape_surrogates(f"push refused ({head})" + (f": {error}" if error else ""))
    attempt = body.get("attemptNumber")
    line = f"{body.get('name') or '?'} {body.get('jobId') or '?'}"
    if isinstance(attempt, int):
        line += f" #{attempt}"
    line += f" {outcome} in {seconds:.2f}s"
    if error:
        line += f": {error}"
    if reason and reason not in error:
        line += f" ({reason})"
    return escape_surrogates(line)


def _say(line: str) -> None:
    try:
        print(line, flush=True)
    except UnicodeEncodeError:  # a terminal that cannot show some character of it
        print(line.encode("ascii", "backslashreplace").decode(), flush=True)


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
