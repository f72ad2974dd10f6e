"""The real functions-framework server in a child process, on 127.0.0.1.

    with FunctionsFramework(STANDINS / "gcf_echo.py", "echo", env={"X": "1"}) as ff:
        with httpx.Client(base_url=ff.url, trust_env=False) as client:
            response = client.post("/", json=push, headers={"authorization": "Bearer s"})
        assert response.status_code == 200
    # stopped: ff.returncode is set, ff.output() has its log

It runs ``python -m functions_framework --source S --target T --host 127.0.0.1 --port P``:
the same entry point as the ``functions-framework`` command, from this interpreter, so the
function sees the same installed packages. The server is gunicorn, which loads the source
before it binds: once the port accepts connections the function is loaded, so readiness is
"connect succeeds", polled with ``tests.waiting.wait_for``, which also notices an early exit.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from tests.waiting import wait_for


def free_port() -> int:
    """A loopback port free right now (another process could take it before the server
    binds it; on this machine nothing else asks for ephemeral ports that fast)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class FunctionsFramework:
    def __init__(
        self,
        source: str | os.PathLike[str],
        target: str,
        *,
        signature_type: Literal["http", "event", "cloudevent"] = "http",
        env: Mapping[str, str] | None = None,
        ready_timeout: float = 20.0,
    ) -> None:
        self.source = Path(source).resolve()
        self.target = target
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        fd, log_name = tempfile.mkstemp(prefix="functions-framework-", suffix=".log")
        self.log_path = Path(log_name)
        child_env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
        child_env.update({"PYTHONDONTWRITEBYTECODE": "1", "NO_PROXY": "*", "no_proxy": "*"})
        child_env.update(env or {})
        command = [
            sys.executable,
            "-m",
            "functions_framework",
            "--source",
            str(self.source),
            "--target",
            target,
            "--signature-type",
            signature_type,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        with os.fdopen(fd, "wb") as log:
            self._popen = subprocess.Popen(
                command,
                cwd=self.source.parent,
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_ready(ready_timeout)
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def output(self) -> str:
        """What the server and the function wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _wait_ready(self, timeout: float) -> None:
        try:
            what = f"port {self.port} to accept connections"
            wait_for(self._accepts, timeout=timeout, interval=0.05, message=what)
        except AssertionError as exc:
            raise TimeoutError(f"functions-framework not up: {exc}\n{self.output()}") from None

    def _accepts(self) -> bool:
        """Whether the port takes a connection yet; RuntimeError once the server died."""
        if (code := self._popen.poll()) is not None:
            raise RuntimeError(f"functions-framework exited {code}\n{self.output()}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                return True
        except (ConnectionRefusedError, TimeoutError):
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (gunicorn's graceful stop), then SIGKILL if it lingers."""
        if self._popen.poll() is None:
            self._popen.terminate()
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait(timeout)

    def close(self) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> FunctionsFramework:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
