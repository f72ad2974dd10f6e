"""Read timeouts of the servers the CLI runs (the app's push endpoint here; the emit server
in tests/server/test_slow_clients.py): slow headers and stalled bodies are cut off, on real
sockets, with both of uvicorn's HTTP protocols."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
import uvicorn

from emit_push.cli.serving import (
    BODY_TIMEOUT,
    HEADER_TIMEOUT,
    _h11_protocol,
    http_protocol,
    uvicorn_server_for,
)
from tests.server.slow_clients import (
    SLOW_APP,
    Served,
    answer,
    closed_after,
    ok_app,
    request_bytes,
    trickle,
)

TIMEOUT = 0.3  # both timeouts, in these tests


def h11_server(on_started: Callable[[], None]) -> uvicorn.Server:
    server = uvicorn_server_for(
        ok_app, on_started=on_started, header_timeout=TIMEOUT, body_timeout=TIMEOUT
    )
    server.config.http = _h11_protocol(TIMEOUT, TIMEOUT)  # as without httptools
    return server


def httptools_server(on_started: Callable[[], None]) -> uvicorn.Server:
    return uvicorn_server_for(
        ok_app, on_started=on_started, header_timeout=TIMEOUT, body_timeout=TIMEOUT
    )


@pytest.fixture(params=[httptools_server, h11_server], ids=["httptools", "h11"])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    served = Served(request.param)
    yield served
    served.stop()


def test_defaults_and_one_protocol_class_per_pair_of_timeouts() -> None:
    assert (HEADER_TIMEOUT, BODY_TIMEOUT) == (10.0, 30.0)
    # What `emit-push dev` and `demo` serve the app's push endpoint with.
    assert uvicorn_server_for(ok_app).config.http is http_protocol(10.0, 30.0)
    assert http_protocol(1.0, 2.0) is http_protocol(1.0, 2.0)
    assert http_protocol(1.0, 2.0) is not http_protocol(1.0, 3.0)


async def test_slow_headers_are_cut_off(served: Served) -> None:
    """50 connections sending their headers a byte at a time: each closed in time."""

    async def slow_headers(writer: asyncio.StreamWriter) -> None:
        await trickle(writer, request_bytes(body=b"x"), every=0.02)

    closed = await asyncio.gather(*(closed_after(served.port, slow_headers) for _ in range(50)))
    assert all(TIMEOUT * 0.9 <= seconds < TIMEOUT + 1.5 for seconds in closed), closed


async def test_a_connection_that_sends_nothing_is_cut_off(served: Served) -> None:
    async def silent(writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    assert TIMEOUT * 0.9 <= await closed_after(served.port, silent) < TIMEOUT + 1.5


async def test_a_stalled_body_is_cut_off_and_a_slow_one_is_read(served: Served) -> None:
    async def stalled(writer: asyncio.StreamWriter) -> None:
        writer.write(request_bytes(body=b"0123456789")[:-5])  # half the body, then nothing
        await asyncio.Event().wait()

    assert TIMEOUT * 0.9 <= await closed_after(served.port, stalled) < TIMEOUT + 1.5
    # A body that keeps coming, each piece within the timeout, is read however long it takes.
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    data = request_bytes(body=b"x" * 8)
    writer.write(data[:-8])
    for _ in range(8):  # 8 pauses of a third of the timeout: 2.7 times the timeout in all
        await asyncio.sleep(TIMEOUT / 3)
        writer.write(b"x")
    assert await answer(reader) == (200, b"8")
    writer.close()


async def test_an_idle_keep_alive_connection_outlives_the_header_timeout(
    served: Served,
) -> None:
    """Between requests, uvicorn's keep-alive timeout rules (longer than clients keep
    idle connections): the header timeout starts with the next request's first byte."""
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    for _ in range(2):
        writer.write(request_bytes(body=b"abc"))
        assert await answer(reader) == (200, b"3")
        await asyncio.sleep(TIMEOUT * 2)  # idle, after an answer
    writer.close()


async def test_a_client_waiting_for_the_app_is_not_cut_off(served: Served) -> None:
    """The app takes longer than the body timeout to read: with a body larger than what
    uvicorn buffers (reading paused), or a client waiting for ``100 Continue``."""
    assert SLOW_APP > TIMEOUT * 2
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request_bytes("/slow", b"x" * 300_000))  # past uvicorn's 64 KiB high water
    assert await answer(reader) == (200, b"300000")
    head = request_bytes("/slow", b"abc", "Expect: 100-continue\r\n")[:-3]
    writer.write(head)
    continued = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert continued.startswith(b"HTTP/1.1 100")
    writer.write(b"abc")
    assert await answer(reader) == (200, b"3")
    writer.close()
