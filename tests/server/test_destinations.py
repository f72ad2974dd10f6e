"""Where pushes and callbacks may go: never to link-local, cloud metadata, unspecified,
multicast or broadcast destinations, in any notation, after resolving, or at connection.

Every name here resolves from a table (``LocalResolver``): no lookup leaves the machine,
and a destination that slipped through would be 0.0.0.0, which Linux connects locally.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import httpcore
import httpx
import pytest

from emit_push.server import EmitServer, ServerConfig
from emit_push.server._addresses import host_problem
from emit_push.server._egress import DestinationRefused
from emit_push.server._guarded import GuardedBackend
from emit_push.server._records import PushSettings
from tests.conftest import ADMIN_KEY, SPACE, client_for, make_config
from tests.receiver import Receiver
from tests.server.conftest import Deliveries, LocalResolver, call, create, job

REFUSED = "pushes and callbacks may not go there"


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("169.254.169.254", "169.254.169.254 is a cloud metadata address"),
        ("0xa9fea9fe", "0xa9fea9fe (169.254.169.254) is a cloud metadata address"),
        ("0xA9FEA9FE", "0xA9FEA9FE (169.254.169.254) is a cloud metadata address"),
        ("2852039166", "2852039166 (169.254.169.254) is a cloud metadata address"),
        ("0251.0376.0251.0376", "0251.0376.0251.0376 (169.254.169.254) is a cloud metadata address"),
        ("169.254.43518", "169.254.43518 (169.254.169.254) is a cloud metadata address"),
        ("169.16689662", "169.16689662 (169.254.169.254) is a cloud metadata address"),
        ("0xa9.0xfe.0xa9.0xfe", "0xa9.0xfe.0xa9.0xfe (169.254.169.254) is a cloud metadata address"),
        ("169.254.169.254.", "169.254.169.254. (169.254.169.254) is a cloud metadata address"),
        ("[::ffff:169.254.169.254]", "[::ffff:169.254.169.254] is a cloud metadata address (as IPv4 inside IPv6)"),
        ("::ffff:a9fe:a9fe", "::ffff:a9fe:a9fe is a cloud metadata address (as IPv4 inside IPv6)"),
        ("::169.254.169.254", "::169.254.169.254 is a cloud metadata address (as IPv4 inside IPv6)"),
        ("::ffff:0:a9fe:a9fe", "::ffff:0:a9fe:a9fe is a cloud metadata address (as IPv4 inside IPv6)"),
        ("64:ff9b::a9fe:a9fe", "64:ff9b::a9fe:a9fe is a cloud metadata address (as IPv4 inside IPv6)"),
        ("64:ff9b:1::a9fe:a9fe", "64:ff9b:1::a9fe:a9fe is a cloud metadata address (as IPv4 inside IPv6)"),
        ("2002:a9fe:a9fe::1", "2002:a9fe:a9fe::1 is a cloud metadata address (as IPv4 inside IPv6)"),
        ("fd00:ec2::254", "fd00:ec2::254 is a cloud metadata address"),
        ("100.100.100.200", "100.100.100.200 is a cloud metadata address"),
        ("169.254.170.2", "169.254.170.2 is a cloud metadata address"),
        ("metadata.google.internal", "metadata.google.internal is a cloud metadata host"),
        ("METADATA.Google.Internal.", "METADATA.Google.Internal. is a cloud metadata host"),
        ("metadata", "metadata is a cloud metadata host"),
        ("metadata.goog", "metadata.goog is a cloud metadata host"),
        ("instance-data.ec2.internal", "instance-data.ec2.internal is a cloud metadata host"),
        ("169.254.1.1", "169.254.1.1 is a link-local address"),
        ("fe80::1", "fe80::1 is a link-local address"),
        ("fe80::1%25eth0", "fe80::1%25eth0 is a link-local address"),
        ("[febf::1]", "[febf::1] is a link-local address"),
        ("0.0.0.0", "0.0.0.0 is an unspecified address"),
        ("0", "0 (0.0.0.0) is an unspecified address"),
        ("0x0", "0x0 (0.0.0.0) is an unspecified address"),
        ("0.1.2.3", "0.1.2.3 is an unspecified address"),
        ("::", ":: is an unspecified address"),
        ("[::]", "[::] is an unspecified address"),
        ("::ffff:0.0.0.0", "::ffff:0.0.0.0 is an unspecified address (as IPv4 inside IPv6)"),
        ("224.0.0.1", "224.0.0.1 is a multicast address"),
        ("239.255.255.250", "239.255.255.250 is a multicast address"),
        ("ff02::1", "ff02::1 is a multicast address"),
        ("255.255.255.255", "255.255.255.255 is the broadcast address"),
        ("4294967295", "4294967295 (255.255.255.255) is the broadcast address"),
        ("240.0.0.1", "240.0.0.1 is a reserved address"),
    ],
)  # fmt: skip
def test_refused_hosts_in_every_notation(host: str, problem: str) -> None:
    assert host_problem(host) == problem


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1", "127.1", "0x7f.1", "2130706433", "017700000001", "localhost", "::1",
        "[::1]", "::ffff:127.0.0.1", "10.0.0.5", "192.168.1.20", "172.17.0.1", "fd12:3456::1",
        "93.184.216.34", "2606:2800:220:1::1", "example.com", "metadata.example.com",
        "host.docker.internal", "169.254.169.254.nip.io", "08.1.2.3", "1.2.3.4.5",
        "4294967296",
    ],
)  # fmt: skip
def test_loopback_private_and_public_hosts_pass_the_spelling_check(host: str) -> None:
    """Loopback stays allowed (development); names are judged once resolved."""
    assert host_problem(host) is None


# -- refused where the URL is given ------------------------------------------------------


@pytest.fixture
def resolver() -> LocalResolver:
    return LocalResolver(
        {
            "hooks.test": ["127.0.0.1"],
            "imds.test": ["169.254.169.254"],
            "mixed.test": ["127.0.0.1", "fe80::1"],
            "rebind.test": [["127.0.0.1"], ["0.0.0.0"]],  # fine when given, not when sent
        }
    )


@pytest.fixture
def server_config(resolver: LocalResolver) -> ServerConfig:
    return make_config(resolver=resolver, callback_retry_delays=(0.05,))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        ("http://0xa9fea9fe/", "0xa9fea9fe (169.254.169.254) is a cloud metadata address"),
        ("http://2852039166/", "2852039166 (169.254.169.254) is a cloud metadata address"),
        ("http://0251.0376.0251.0376/", "0251.0376.0251.0376 (169.254.169.254) is a cloud metadata address"),
        ("http://169.254.43518/", "169.254.43518 (169.254.169.254) is a cloud metadata address"),
        ("http://[::ffff:169.254.169.254]/", "::ffff:169.254.169.254 is a cloud metadata address (as IPv4 inside IPv6)"),
        ("http://metadata.google.internal./computeMetadata/v1/", "metadata.google.internal. is a cloud metadata host"),
        ("https://[fe80::1%25eth0]:8443/", "fe80::1%25eth0 is a link-local address"),
        ("http://0.0.0.0:8080/", "0.0.0.0 is an unspecified address"),
        ("http://[::]:8080/", ":: is an unspecified address"),
        ("http://224.0.0.251/", "224.0.0.251 is a multicast address"),
        ("http://255.255.255.255/", "255.255.255.255 is the broadcast address"),
        ("http://imds.test/", "imds.test resolves to a cloud metadata address"),
        ("http://mixed.test:9000/", "mixed.test resolves to a link-local address"),
    ],
)  # fmt: skip
async def test_refused_callback_urls_and_push_urls_say_why(
    http: httpx.AsyncClient, url: str, message: str
) -> None:
    response = await http.post(f"/spaces/{SPACE}/jobs", json={"name": "a", "callbackUrl": url})
    assert (response.status_code, response.json()) == (
        400,
        {"error": f"callbackUrl: {message}; {REFUSED}", "code": "invalid_request"},
    )
    bulk = await http.post(
        f"/spaces/{SPACE}/jobs", json=[{"name": "ok"}, {"name": "a", "callbackUrl": url}]
    )
    assert bulk.json()["error"] == f"[1].callbackUrl: {message}; {REFUSED}"
    push = await http.put(f"/spaces/{SPACE}/push", json={"url": url})
    assert push.json()["error"] == f"url: {message}; {REFUSED}"
    assert (await http.get(f"/spaces/{SPACE}/jobs")).json() == []  # nothing was created


async def test_loopback_and_names_that_do_not_resolve_yet_are_accepted(
    http: httpx.AsyncClient, resolver: LocalResolver
) -> None:
    for url in [
        "http://127.0.0.1:8788/emit",
        "http://localhost:8788/emit",
        "http://[::1]:8788/emit",
        "http://hooks.test/cb",
        "http://not-yet.test/cb",  # checked again at every connection
    ]:
        response = await http.post(f"/spaces/{SPACE}/jobs", json={"name": "a", "callbackUrl": url})
        assert response.status_code == 201, (url, response.text)
        assert (await http.put(f"/spaces/{SPACE}/push", json={"url": url})).status_code == 200
    assert {"localhost", "hooks.test", "not-yet.test"} <= set(resolver.asked)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Host", "is set by the server"),
        ("host", "is set by the server"),
        ("Connection", "is set by the server"),
        ("Upgrade", "is set by the server"),
        ("Proxy-Authorization", "is set by the server"),
        ("Metadata-Flavor", "is a cloud metadata header: it may not be sent"),
        ("metadata", "is a cloud metadata header: it may not be sent"),
        ("X-Google-Metadata-Request", "is a cloud metadata header: it may not be sent"),
        ("X-aws-ec2-metadata-token", "is a cloud metadata header: it may not be sent"),
    ],
)
async def test_host_hop_by_hop_and_metadata_headers_are_refused(
    http: httpx.AsyncClient, name: str, problem: str
) -> None:
    spec = {"name": "a", "callbackUrl": "http://127.0.0.1:9/cb", "callbackHeaders": {name: "x"}}
    response = await http.post(f"/spaces/{SPACE}/jobs", json=spec)
    assert response.json()["error"] == f"callbackHeaders.{name}: {problem}"
    push = {"url": "http://127.0.0.1:9/p", "headers": {name: "Google"}}
    response = await http.put(f"/spaces/{SPACE}/push", json=push)
    assert response.json()["error"] == f"headers.{name}: {problem}"


# -- checked again at every connection -------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


async def test_a_name_that_rebinds_is_refused_at_send_time_without_connecting(
    emit: EmitServer, http: httpx.AsyncClient, receiver: Receiver, deliveries: Deliveries
) -> None:
    """rebind.test resolves to loopback when the job is created, and to 0.0.0.0 (which
    would reach the receiver) when the callback goes out: refused, not retried, and the
    record says only that (nothing of how the connection would have gone)."""
    url = f"http://rebind.test:{receiver.port}/cb"
    job_id = await create(http, callbackUrl=url)
    await call(http, job_id, "kill")
    [record] = await deliveries.wait_for(1, "callback_sent", "callback_failed", job_id=job_id)
    assert (record.type, record.data) == (
        "callback_failed",
        {
            "url": url,
            "retryAttempt": 0,
            "statusCode": None,
            "willRetry": False,
            "error": "refused: the destination is not allowed",
        },
    )
    await emit.scheduler.in_flight()
    assert emit.store.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    assert receiver.requests == []


async def test_a_push_to_a_rebinding_name_is_refused_with_its_reason(
    emit: EmitServer, http: httpx.AsyncClient, receiver: Receiver, deliveries: Deliveries
) -> None:
    """The push URL is the space admin's: the refusal says why, and is not retried."""
    url = f"http://rebind.test:{receiver.port}/push"
    assert (await http.put(f"/spaces/{SPACE}/push", json={"url": url})).status_code == 200
    job_id = await create(http)
    [record] = await deliveries.wait_for(1, "push_sent", "push_failed", job_id=job_id)
    assert record.type == "push_failed"
    assert record.data["error"] == "refused: rebind.test resolves to an unspecified address"
    assert record.data["willRetry"] is False
    assert receiver.requests == []


async def test_a_refused_destination_stored_by_an_older_server_is_not_sent(
    emit: EmitServer, http: httpx.AsyncClient, deliveries: Deliveries
) -> None:
    job_id = await create(http, callbackUrl="http://127.0.0.1:9/cb")
    emit.store.conn.execute(
        "UPDATE jobs SET callback_url = 'http://0x0:9/cb' WHERE id = ?", (job_id,)
    )
    emit.engine.push[SPACE] = PushSettings("http://[::ffff:a9fe:a9fe]/p")
    await create(http)
    [pushed] = await deliveries.wait_for(1, "push_failed")
    assert pushed.data["error"] == (
        "refused: ::ffff:a9fe:a9fe is a cloud metadata address (as IPv4 inside IPv6)"
    )
    await call(http, job_id, "kill")
    [called] = await deliveries.wait_for(1, "callback_failed", job_id=job_id)
    assert (called.data["error"], called.data["willRetry"]) == (
        "refused: the destination is not allowed",
        False,
    )


async def test_a_name_is_connected_at_the_address_checked(
    emit: EmitServer, http: httpx.AsyncClient, receiver: Receiver, deliveries: Deliveries
) -> None:
    """The connection goes to the address the check saw, the URL's name kept as Host."""
    url = f"http://hooks.test:{receiver.port}/push"
    await http.put(f"/spaces/{SPACE}/push", json={"url": url, "headers": {"X-Env": "dev"}})
    await create(http)
    [push] = await receiver.wait_for(1)
    assert push.headers["host"] == f"hooks.test:{receiver.port}"
    assert push.headers["x-env"] == "dev"


async def test_headers_stored_by_an_older_server_that_are_refused_now_are_not_sent(
    emit: EmitServer, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    headers = {"Host": "metadata.google.internal", "Metadata-Flavor": "Google", "X-Ok": "1"}
    emit.engine.push[SPACE] = PushSettings(f"{receiver.url}/p", headers)
    await create(http)
    [push] = await receiver.wait_for(1)
    assert push.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert "metadata-flavor" not in push.headers
    assert push.headers["x-ok"] == "1"


# -- what a callback's record tells ----------------------------------------------------


async def test_callback_records_tell_no_more_than_whether_it_connected_and_was_answered(
    resolver: LocalResolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A callback URL is any job creator's to choose: its records must not make the server
    a port scanner (no OS words, no address, no kind of refusal)."""
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    silent_port = silent.getsockname()[1]
    settings = make_config(resolver=resolver, callback_retry_delays=(), callback_timeout=0.2)
    errors = {}
    try:
        async with EmitServer(settings) as server, client_for(server, ADMIN_KEY) as admin:
            deliveries = Deliveries(server, monkeypatch)
            for port in (closed_port, silent_port):
                job_id = await create(admin, callbackUrl=f"http://localhost:{port}/cb")
                await call(admin, job_id, "kill")
                [record] = await deliveries.wait_for(1, "callback_failed", job_id=job_id)
                errors[port] = record.data["error"]
                assert "Errno" not in str((await job(admin, job_id))["events"])
    finally:
        silent.close()
    assert errors == {closed_port: "could not connect", silent_port: "no answer in time"}


# -- the backend alone -----------------------------------------------------------------


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.closed = False

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        pass

    async def aclose(self) -> None:
        self.closed = True

    def get_extra_info(self, info: str) -> Any:
        return (self.peer, 80) if info == "server_addr" else None


class _Recording(httpcore.AsyncNetworkBackend):
    """Records where connections were asked for; connects nowhere."""

    def __init__(self, peer: str | None = None) -> None:
        self.calls: list[str] = []
        self.peer = peer
        self.streams: list[_Stream] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> _Stream:
        self.calls.append(host)
        stream = _Stream(self.peer or host)
        self.streams.append(stream)
        return stream

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def test_the_backend_checks_every_address_and_connects_to_the_checked_one() -> None:
    resolver = LocalResolver(
        {"ok.test": ["127.0.0.1", "::1"], "bad.test": ["127.0.0.1", "169.254.169.254"]}
    )
    inner = _Recording()
    backend = GuardedBackend(resolver, inner)
    stream = await backend.connect_tcp("ok.test", 80)
    assert inner.calls == ["127.0.0.1"]  # the address checked, not the name again
    await stream.aclose()
    with pytest.raises(DestinationRefused, match="bad.test resolves to a cloud metadata address"):
        await backend.connect_tcp("bad.test", 80)
    with pytest.raises(DestinationRefused, match="0x0 resolves to an unspecified address"):
        await backend.connect_tcp("0x0", 80)
    with pytest.raises(httpcore.ConnectError, match="could not resolve nowhere.test"):
        await backend.connect_tcp("nowhere.test", 80)
    with pytest.raises(DestinationRefused):
        await backend.connect_unix_socket("/var/run/docker.sock")
    assert inner.calls == ["127.0.0.1"]  # nothing else was connected


async def test_the_backend_checks_the_peer_it_got() -> None:
    """Whatever the lower layers did, a socket connected to a refused peer is closed."""
    inner = _Recording(peer="169.254.169.254")
    backend = GuardedBackend(LocalResolver({"ok.test": ["127.0.0.1"]}), inner)
    with pytest.raises(DestinationRefused, match="connected to a refused address"):
        await backend.connect_tcp("ok.test", 80)
    assert inner.streams[0].closed


async def test_the_backend_resolves_names_for_itself_each_time() -> None:
    resolver = LocalResolver({"flip.test": [["127.0.0.1"], ["fe80::1"]]})
    inner = _Recording()
    backend = GuardedBackend(resolver, inner)
    await backend.connect_tcp("flip.test", 80)
    with pytest.raises(DestinationRefused, match="flip.test resolves to a link-local address"):
        await backend.connect_tcp("flip.test", 80)
    assert resolver.asked == ["flip.test", "flip.test"]
