"""A stand-in for the Lambda service: the Runtime API (2018-06-01) on 127.0.0.1, driving
the real runtime client (``python -m awslambdaric``) in a child process.

    with LambdaRuntime() as rt:
        fn = rt.start_function("lambda_echo.handler", task_root=STANDINS, env={"X": "1"})
        response = rt.invoke(event, deadline_in=30.0)   # the handler's return value, parsed
        failure = rt.invoke(bad_event)                  # a FunctionError (posted to /error)
        assert fn.invocations == 2                      # both served by one warm process

One function process (one execution environment) at a time, as Lambda runs one invocation
per environment: invocations queue and the process takes them one after another with
``GET /invocation/next``. As on Lambda:

* the process is ready once it asks for its first invocation; an init failure arrives on
  ``/init/error`` and ``start_function`` raises :class:`LambdaInitError`;
* an invocation not answered by its deadline is a timeout: the process is killed and the
  result is a ``Sandbox.Timedout`` :class:`FunctionError`;
* after a timeout or a crash the next ``invoke`` starts a fresh process (a cold start).

The runtime client keeps one HTTP/1.1 connection open across invocations (libcurl, inside
awslambdaric), so the server speaks HTTP/1.1 with keep-alive; ``Invocation.connection``
records the client's address, which stays the same while the connection is reused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tests.harnesses.runtime_api import Outcome, RuntimeApiServer

ERROR_TYPE_HEADER = "lambda-runtime-function-error-type"

Status = Literal["queued", "running", "succeeded", "failed", "timed_out", "crashed"]


@dataclass(frozen=True)
class FunctionError:
    """What the runtime client posted to ``/invocation/{id}/error`` or ``/init/error``."""

    error_type: str
    error_message: str
    stack_trace: list[str]
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_post(cls, raw: bytes, headers: Mapping[str, str]) -> FunctionError:
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"errorMessage": raw.decode(errors="replace")}
        if not isinstance(body, dict):
            body = {"errorMessage": repr(body)}
        return cls(
            error_type=str(body.get("errorType") or headers.get(ERROR_TYPE_HEADER, "")),
            error_message=str(body.get("errorMessage", "")),
            stack_trace=list(body.get("stackTrace") or []),
            body=body,
            headers=dict(headers),
        )


class LambdaInitError(RuntimeError):
    def __init__(self, error: FunctionError, output: str) -> None:
        super().__init__(f"init failed: {error.error_type}: {error.error_message}\n{output}")
        self.error = error
        self.output = output


class FunctionCrashed(RuntimeError):
    """The function process exited without answering (or never became ready)."""


@dataclass(eq=False)
class Invocation:
    request_id: str
    event: bytes
    deadline_ms: int
    headers: dict[str, str]
    status: Status = "queued"
    process: FunctionProcess | None = None
    connection: tuple[str, int] | None = None
    response: bytes | None = None
    content_type: str | None = None
    error: FunctionError | None = None

    @property
    def done(self) -> bool:
        return self.status not in ("queued", "running")

    def result(self) -> Any:
        """The parsed response, or the :class:`FunctionError` for a failure."""
        if self.error is not None:
            return self.error
        if self.response is None:
            raise RuntimeError(f"invocation {self.request_id} is {self.status}")
        if (self.content_type or "application/json").startswith("application/json"):
            return json.loads(self.response)
        return self.response


class FunctionProcess:
    """One ``python -m awslambdaric`` process: one execution environment."""

    def __init__(self, popen: subprocess.Popen[bytes], log_path: Path, handler: str) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.handler = handler
        self.log_path = log_path
        self.ready = False
        self.init_error: FunctionError | None = None
        self.returncode: int | None = None
        self.invocations = 0  # invocations handed to this process by /next
        self._watcher: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self.returncode is None

    def output(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class LambdaRuntime:
    def __init__(
        self,
        *,
        function_name: str = "emit-push-test",
        region: str = "us-east-1",
        account_id: str = "123456789012",
        memory_mb: int = 512,
        deadline_grace: float = 0.25,
    ) -> None:
        self.function_name = function_name
        self.region = region
        self.function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.memory_mb = memory_mb
        # Headroom past the deadline before the kill, for scheduling jitter on a busy box.
        self.deadline_grace = deadline_grace
        self.invocations: list[Invocation] = []
        self.processes: list[FunctionProcess] = []
        self.function: FunctionProcess | None = None
        self._spec: dict[str, Any] | None = None
        self._cond = threading.Condition()
        self._queue: deque[Invocation] = deque()
        self._by_id: dict[str, Invocation] = {}
        self._epoch = 0  # bumped when a process goes: its pending /next must not take work
        self._closing = False
        self._server = RuntimeApiServer(self)
        self.port = self._server.port
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="lambda-runtime-api",
            daemon=True,
        )
        self._thread.start()

    def __enter__(self) -> LambdaRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the function process -------------------------------------------------------

    def start_function(
        self,
        handler: str,
        *,
        task_root: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        timeout: float = 15.0,
    ) -> FunctionProcess:
        """Start the runtime client on ``handler`` (``module.function``, as Lambda's
        Handler setting; ``module:function`` is accepted too) with ``task_root`` as its
        LAMBDA_TASK_ROOT and working directory, and wait for it to ask for its first
        invocation. Raises LambdaInitError, FunctionCrashed or TimeoutError; the process
        is stopped in every failure."""
        if self.function is not None:
            raise RuntimeError("a function process is running: stop_function() first")
        handler = handler.replace(":", ".")
        task_root = Path(task_root).resolve()
        self._spec = {"handler": handler, "task_root": task_root, "env": dict(env or {})}
        fd, log_name = tempfile.mkstemp(prefix="lambda-function-", suffix=".log")
        with os.fdopen(fd, "wb") as log:
            popen = subprocess.Popen(
                [sys.executable, "-m", "awslambdaric", handler],
                cwd=task_root,
                env=self._function_env(handler, task_root, env or {}),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        fn = FunctionProcess(popen, Path(log_name), handler)
        fn._watcher = threading.Thread(
            target=self._watch, args=(fn,), name=f"lambda-function-{fn.pid}", daemon=True
        )
        with self._cond:
            self.function = fn
            self.processes.append(fn)
        fn._watcher.start()
        with self._cond:
            started = self._cond.wait_for(
                lambda: fn.ready or fn.init_error is not None or not fn.alive, timeout
            )
        if fn.ready:
            return fn
        self.stop_function()
        if fn.init_error is not None:
            raise LambdaInitError(fn.init_error, fn.output())
        if not started:
            raise TimeoutError(f"{handler}: no /next within {timeout}s\n{fn.output()}")
        raise FunctionCrashed(f"{handler}: exited {fn.returncode} at init\n{fn.output()}")

    def stop_function(self, timeout: float = 5.0) -> None:
        """Stop the function process (SIGTERM, then SIGKILL) and drop its connections."""
        fn = self.function
        if fn is None:
            return
        if fn.popen.poll() is None:
            fn.popen.terminate()
            try:
                fn.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                fn.popen.kill()
                fn.popen.wait(timeout)
        if fn._watcher is not None:
            fn._watcher.join(timeout)
        with self._cond:
            self.function = None
            self._epoch += 1  # a /next of the old process still waiting gives up
            self._cond.notify_all()
        self._server.drop_connections()

    def _watch(self, fn: FunctionProcess) -> None:
        returncode = fn.popen.wait()
        with self._cond:
            fn.returncode = returncode
            self._cond.notify_all()

    def _function_env(
        self, handler: str, task_root: Path, extra: Mapping[str, str]
    ) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not _platform_variable(key)}
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        env.update(
            {
                # Read once, when the runtime client's C extension is loaded.
                "AWS_LAMBDA_RUNTIME_API": self.address,
                "_HANDLER": handler,
                "LAMBDA_TASK_ROOT": str(task_root),
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(task_root), env.get("PYTHONPATH")])
                ),
                # awslambdaric polls /next from a thread on 3.12+ runtimes only: match ours.
                "AWS_EXECUTION_ENV": f"AWS_Lambda_python{version}",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": stream,
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "TZ": ":UTC",
                "PYTHONDONTWRITEBYTECODE": "1",
                # libcurl honours proxy variables even for 127.0.0.1: keep it on loopback.
                "NO_PROXY": "*",
                "no_proxy": "*",
            }
        )
        env.update(extra)
        return env

    # -- invocations ----------------------------------------------------------------

    def invoke(self, event: Any, *, deadline_in: float = 30.0, **options: Any) -> Any:
        """Invoke the function and wait for the answer: the parsed response, or a
        FunctionError (from /error, or ``Sandbox.Timedout`` past the deadline)."""
        return self.invoke_record(event, deadline_in=deadline_in, **options).result()

    def invoke_record(
        self,
        event: Any,
        *,
        deadline_in: float = 30.0,
        trace_id: str | None = None,
        client_context: Mapping[str, Any] | None = None,
        cognito_identity: Mapping[str, Any] | None = None,
    ) -> Invocation:
        """Like :meth:`invoke`, returning the whole :class:`Invocation` record."""
        fn = self.function
        if fn is None or not fn.alive:
            if self._spec is None:
                raise RuntimeError("start_function() first")
            self.stop_function()
            fn = self.start_function(**self._spec)  # a cold start, as Lambda does
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        request_id = str(uuid.uuid4())
        deadline_ms = int((time.time() + deadline_in) * 1000)
        headers = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.function_arn,
            "Lambda-Runtime-Trace-Id": trace_id or _trace_id(),
        }
        if client_context is not None:
            headers["Lambda-Runtime-Client-Context"] = json.dumps(client_context)
        if cognito_identity is not None:
            headers["Lambda-Runtime-Cognito-Identity"] = json.dumps(cognito_identity)
        invocation = Invocation(request_id, body, deadline_ms, headers)
        with self._cond:
            self.invocations.append(invocation)
            self._by_id[request_id] = invocation
            self._queue.append(invocation)
            self._cond.notify_all()
            finished = self._cond.wait_for(
                lambda: invocation.done or not fn.alive, deadline_in + self.deadline_grace
            )
            if invocation.done:
                return invocation
            if invocation in self._queue:
                self._queue.remove(invocation)
            invocation.status = "timed_out" if not finished else "crashed"
        if invocation.status == "crashed":
            raise FunctionCrashed(f"exited {fn.returncode} during {request_id}\n{fn.output()}")
        message = f"RequestId: {request_id} Error: Task timed out after {deadline_in:.2f} seconds"
        posted = {"errorType": "Sandbox.Timedout", "errorMessage": message}
        invocation.error = FunctionError("Sandbox.Timedout", message, [], posted)
        self.stop_function()  # Lambda resets the environment after a timeout
        return invocation

    # -- the Runtime API's backend (called from its request threads) -----------------

    def next_invocation(self, peer: tuple[str, int]) -> tuple[dict[str, str], bytes] | None:
        """Block a ``GET /next`` until there is work; None when its process is gone."""
        with self._cond:
            epoch = self._epoch
            fn = self.function
            if fn is not None and not fn.ready:
                fn.ready = True
                self._cond.notify_all()
            self._cond.wait_for(lambda: self._queue or self._closing or self._epoch != epoch)
            if self._closing or self._epoch != epoch:
                return None
            invocation = self._queue.popleft()
            invocation.status = "running"
            invocation.process = fn
            invocation.connection = peer
            if fn is not None:
                fn.invocations += 1
            return invocation.headers, invocation.event

    def invocation_posted(
        self, request_id: str, outcome: Outcome, body: bytes, headers: dict[str, str]
    ) -> bool:
        with self._cond:
            invocation = self._by_id.get(request_id)
            if invocation is None or invocation.status != "running":
                return False
            if outcome == "response":
                invocation.status = "succeeded"
                invocation.response = body
                invocation.content_type = headers.get("content-type")
            else:
                invocation.status = "failed"
                invocation.error = FunctionError.from_post(body, headers)
            self._cond.notify_all()
            return True

    def init_error_posted(self, body: bytes, headers: dict[str, str]) -> None:
        with self._cond:
            if self.function is not None:
                self.function.init_error = FunctionError.from_post(body, headers)
            self._cond.notify_all()

    # -- lifetime -------------------------------------------------------------------

    def close(self) -> None:
        self.stop_function()
        self._server.shutdown()  # no new connections from here on
        self._thread.join(5)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._server.drop_connections()
        self._server.server_close()  # joins the request threads
        for fn in self.processes:
            fn.log_path.unlink(missing_ok=True)


def _platform_variable(name: str) -> bool:
    """Variables the child must not inherit: the platform's own, and proxies."""
    upper = name.upper()
    return (
        upper.startswith(("AWS_", "LAMBDA_", "_LAMBDA", "_X_AMZN"))
        or upper == "_HANDLER"
        or upper.endswith("_PROXY")
    )


def _trace_id() -> str:
    root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    return f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=0"
