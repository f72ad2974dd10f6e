"""The HTTP surface of the Lambda Runtime API (2018-06-01), over a backend that holds the
state (``lambda_runtime.LambdaRuntime``). Loopback only, HTTP/1.1 with keep-alive.

    GET  /2018-06-01/runtime/invocation/next            long-poll; 200 + event + headers
    POST /2018-06-01/runtime/invocation/{id}/response   202; 400 for an unknown id
    POST /2018-06-01/runtime/invocation/{id}/error      202; 400 for an unknown id
    POST /2018-06-01/runtime/init/error                 202
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Protocol

API = "/2018-06-01/runtime"

Outcome = Literal["response", "error"]


class Backend(Protocol):
    def next_invocation(self, peer: tuple[str, int]) -> tuple[dict[str, str], bytes] | None:
        """Block until there is an invocation: its headers and event. None: hang up."""

    def invocation_posted(
        self, request_id: str, outcome: Outcome, body: bytes, headers: dict[str, str]
    ) -> bool:
        """Record a response or error (header names lowercased); False if no such
        invocation is running."""

    def init_error_posted(self, body: bytes, headers: dict[str, str]) -> None: ...


class RuntimeApiServer(ThreadingHTTPServer):
    # server_close() joins every request thread: nothing outlives the server.
    daemon_threads = False

    def __init__(self, backend: Backend) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.backend = backend
        self.port: int = self.server_address[1]
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def drop_connections(self) -> None:
        """Shut every open connection: request threads blocked reading wake up and end."""
        with self._lock:
            for sock in self._connections:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A killed function leaves broken connections behind: that is expected here.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the runtime client expects
    server: RuntimeApiServer

    def setup(self) -> None:
        super().setup()
        with self.server._lock:
            self.server._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server._lock:
                self.server._connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the backend's records say what tests need

    def do_GET(self) -> None:
        if self.path != f"{API}/invocation/next":
            self._reply(404, {"errorType": "NotFound", "errorMessage": self.path})
            return
        invocation = self.server.backend.next_invocation(self.client_address)
        if invocation is None:
            self.close_connection = True
            return
        headers, event = invocation
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(event)))
        self.end_headers()
        self.wfile.write(event)

    def do_POST(self) -> None:
        body = self._read_body()
        headers = {name.lower(): value for name, value in self.headers.items()}
        parts = self.path.removeprefix(f"{API}/").split("/")
        if parts == ["init", "error"]:
            self.server.backend.init_error_posted(body, headers)
            self._reply(202, {"status": "OK"})
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            outcome: Outcome = "response" if parts[2] == "response" else "error"
            if self.server.backend.invocation_posted(parts[1], outcome, body, headers):
                self._reply(202, {"status": "OK"})
            else:
                self._reply(400, {"errorType": "InvalidRequestID", "errorMessage": parts[1]})
        else:
            self._reply(404, {"errorType": "NotFound", "errorMessage": self.path})

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
