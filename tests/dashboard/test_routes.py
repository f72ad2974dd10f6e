"""The dashboard's routes, without a browser: who gets the page's key, the headers that
keep it in the page, the static files, and ``/`` and ``/docs``."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from emit_push.server import EmitServer
from emit_push.server._dashboard import DASHBOARD_SCOPES
from tests.conftest import SPACE, LiveServer, client_for, make_config

DASHBOARD = Path(__file__).resolve().parents[2] / "emit_push" / "server" / "dashboard"


def page_config(html: str) -> dict[str, Any]:
    found = re.search(r'<script id="emit-config" type="application/json">(.*?)</script>', html)
    assert found, html[:300]
    config: dict[str, Any] = json.loads(found.group(1))
    return config


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(make_config(db_path=str(tmp_path / "emit.sqlite3")))
    yield server
    server.stop()


def origin(server: LiveServer) -> str:
    return server.base_url.removesuffix("/api/v1")


def get(server: LiveServer, path: str, **headers: str) -> httpx.Response:
    return httpx.get(origin(server) + path, headers=headers, trust_env=False)


def test_the_page_gets_a_key_of_its_own_on_loopback(live: LiveServer) -> None:
    page = get(live, "/dashboard/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    config = page_config(page.text)
    key = config["key"]
    assert key.startswith("emit_dash_")
    assert len(key) > 40
    assert config == {
        "spaceId": SPACE,
        "apiBase": "/api/v1",
        "key": key,
        "keyScopes": list(DASHBOARD_SCOPES),
    }
    assert page_config(get(live, "/dashboard/").text)["key"] == key  # one per run

    with httpx.Client(base_url=live.base_url, headers={"x-api-key": key}) as api:
        ref = api.post(f"/spaces/{SPACE}/jobs", json={"name": "t"})
        assert ref.status_code == 201
        job_id = ref.json()["id"]
        assert api.get(f"/jobs/{job_id}").status_code == 200
        assert api.put(f"/spaces/{SPACE}/push", json={"url": ""}).status_code == 200
        # No worker scopes: the page watches and steers, it does not work jobs.
        claim = api.post(f"/jobs/{job_id}/claim")
        assert (claim.status_code, claim.json()["code"]) == (403, "forbidden")
        assert api.post(f"/jobs/{job_id}/kill").status_code == 200

    live.restart()  # a new run: a new key, and the old one is refused
    assert page_config(get(live, "/dashboard/").text)["key"] not in {key, None}
    with httpx.Client(base_url=live.base_url, headers={"x-api-key": key}) as api:
        assert api.get(f"/spaces/{SPACE}/jobs").status_code == 401


@pytest.mark.parametrize(
    ("host", "handed"),
    [
        ("localhost:{port}", True),
        ("app.localhost:{port}", True),
        ("127.0.0.1:{port}", True),
        ("[::1]:{port}", True),
        ("evil.example:{port}", False),  # DNS rebinding: another name for 127.0.0.1
        ("evil.example", False),
        ("192.168.1.9:{port}", False),
        ("", False),
    ],
)
def test_the_host_must_be_a_loopback_name(live: LiveServer, host: str, handed: bool) -> None:
    page = get(live, "/dashboard/", host=host.format(port=live.port))
    assert (page_config(page.text)["key"] is not None) is handed


async def test_no_key_when_not_local(emit: EmitServer) -> None:
    # In process the server's address is the URL's (emit.test): not loopback.
    async with client_for(emit, None) as http:
        page = await http.get("http://emit.test/dashboard/", headers={"host": "localhost"})
    assert page.status_code == 200
    assert page_config(page.text)["key"] is None  # the page asks for one instead


def test_the_page_keeps_its_key_to_itself(live: LiveServer) -> None:
    headers = get(live, "/dashboard/").headers
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self';" in policy
    assert "frame-ancestors 'none'" in policy
    assert f"connect-src 'self' ws://127.0.0.1:{live.port};" in policy


def test_config_cannot_close_its_script_element(live: LiveServer) -> None:
    text = get(live, "/dashboard/").text
    inside = text.split('type="application/json">')[1].split("</script>")[0]
    assert "<" not in inside


def test_static_files(live: LiveServer) -> None:
    script = get(live, "/dashboard/static/main.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["cache-control"] == "no-cache"
    etag = script.headers["etag"]
    again = get(live, "/dashboard/static/main.js", **{"if-none-match": etag})
    assert (again.status_code, again.content) == (304, b"")

    raw = (DASHBOARD / "static" / "jobs.js").read_bytes()
    packed = httpx.get(
        origin(live) + "/dashboard/static/jobs.js",
        headers={"accept-encoding": "gzip"},
        trust_env=False,
    )
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < len(raw) / 2
    assert packed.content == raw  # httpx decoded it
    plain = get(live, "/dashboard/static/jobs.js", **{"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == raw
    assert gzip.decompress(gzip.compress(raw)) == raw

    assert get(live, "/dashboard/static/app.css").headers["content-type"].startswith("text/css")
    for missing in ("/dashboard/static/nope.js", "/dashboard/static/%2e%2e/index.html"):
        assert get(live, missing).status_code == 404


def test_nothing_is_fetched_from_outside() -> None:
    """Every URL the page's files load is relative: no CDN, no font service."""
    external = re.compile(
        r"""(?:src|href)\s*=\s*["']\s*(?:https?:)?//|from\s+["'](?:https?:)?//|"""
        r"""import\s*\(\s*["'](?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//|@import"""
    )
    files = [p for p in DASHBOARD.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} <= {".html", ".css", ".js"}
    for path in files:
        assert not external.search(path.read_text()), path


def test_the_root_sends_browsers_to_the_dashboard(live: LiveServer) -> None:
    browser = get(live, "/", accept="text/html,application/xhtml+xml,*/*;q=0.8")
    assert (browser.status_code, browser.headers["location"]) == (307, "/dashboard/")
    api = get(live, "/")  # httpx sends Accept: */*
    assert api.json() == {
        "name": "emit local server",
        "baseUrl": f"{live.base_url}",
        "openapi": f"{live.base_url}/openapi.json",
        "dashboard": f"{origin(live)}/dashboard/",
    }
    assert (
        get(live, "/", accept="application/json")
        .headers["content-type"]
        .startswith("application/json")
    )
    bare = get(live, "/dashboard")
    assert (bare.status_code, bare.headers["location"]) == (307, "/dashboard/")
    docs = get(live, "/docs")
    assert (docs.status_code, docs.headers["location"]) == (307, "/api/v1/openapi.json")
