"""Child processes of the ``emit-push`` command whose output lines can be awaited."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

EMIT = [sys.executable, "-m", "emit_push.cli"]


class Process:
    """A child process whose output lines can be awaited with a timeout."""

    def __init__(
        self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.proc = subprocess.Popen(
            [*EMIT, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float = 20) -> str:
        """All output up to and including the first line that contains ``text``."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no {text!r} in {timeout} s:\n{''.join(self.output)}"
                ) from None
            if line is None:
                raise AssertionError(f"exited before {text!r}:\n{''.join(self.output)}")
            self.output.append(line)
            if text in line:
                return "".join(self.output)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(20)
        self._reader.join(20)
        # Closing the pipe under a reader still blocked in it would hang: its output is
        # still open because something the process started outlived it.
        assert not self._reader.is_alive(), f"a child of {self.proc.args} outlived it"
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def stop(self, signum: int = signal.SIGINT) -> tuple[int, str]:
        self.proc.send_signal(signum)
        return self.finish()

    def finish(self, timeout: float = 20) -> tuple[int, str]:
        """Wait for the process to end; its exit code and all its output."""
        code = self.proc.wait(timeout)
        while (line := self.lines.get(timeout=timeout)) is not None:
            self.output.append(line)
        return code, "".join(self.output)
