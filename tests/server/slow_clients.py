"""Slow clients on real sockets, against a uvicorn server run as the CLI runs it.

``Served`` runs a ``uvicorn.Server`` (from ``emit_push.cli.serving``) in a thread on
127.0.0.1; ``closed_after`` tells how long a connection that behaves some way stays open.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

from emit_push.cli.serving import bind

__all__ = ["SLOW_APP", "Served", "answer", "closed_after", "ok_app", "request_bytes", "trickle"]


class Served:
    """``make(on_started)`` -> a uvicorn server, served in a thread until ``stop``."""

    def __init__(self, make: Callable[[Callable[[], None]], uvicorn.Server]) -> None:
        sock = bind("127.0.0.1", 0)
        self.port: int = sock.getsockname()[1]
        started = threading.Event()
        self.server = make(started.set)
        self._thread = threading.Thread(
            target=asyncio.run, args=(self.server.serve(sockets=[sock]),), daemon=True
        )
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("uvicorn did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(10)
        assert not self._thread.is_alive(), "uvicorn did not stop"


SLOW_APP = 0.8
"""Seconds ``ok_app`` takes before reading a request to ``/slow``."""


async def ok_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the whole body, then answers 200 with its length (``/slow``: after a while)."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(SLOW_APP)  # an app busy elsewhere: the client waits for it
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body") or message["type"] == "http.disconnect":
            break
    body = str(size).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def request_bytes(path: str = "/", body: bytes = b"", extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


async def answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The status and body of the next answer on a keep-alive connection."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return int(head.split()[1]), await asyncio.wait_for(reader.readexactly(length), 5)


async def closed_after(
    port: int,
    behave: Callable[[asyncio.StreamWriter], Awaitable[None]],
    limit: float = 10.0,
) -> float:
    """Seconds until the server closes a connection that does ``behave`` (which may write
    for as long as it likes; it is stopped once the connection closes)."""
    started = time.monotonic()  # before the server can have the connection
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    talking = asyncio.create_task(behave(writer))
    try:
        async with asyncio.timeout(limit):
            while await reader.read(65536):
                pass  # an answer (408 or otherwise) may come before the close
    except ConnectionResetError:  # closed with our bytes unread: a reset is a close too
        pass
    finally:
        talking.cancel()
        await asyncio.gather(talking, return_exceptions=True)
        writer.close()
    return time.monotonic() - started


async def trickle(writer: asyncio.StreamWriter, data: bytes, every: float) -> None:
    """Send ``data`` a byte at a time, ``every`` seconds apart; then wait."""
    for byte in data:
        writer.write(bytes([byte]))
        try:
            await writer.drain()
        except OSError:
            return
        await asyncio.sleep(every)
    await asyncio.Event().wait()
