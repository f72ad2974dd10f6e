"""The dashboard's browser tests: one headless Chromium for them all, a fresh page
(browser context) per test, the server on real uvicorn on 127.0.0.1.

Chromium is Debian's (``/usr/bin/chromium``, or ``EMIT_CHROMIUM``), driven by Playwright
for Python with ``executable_path``: Playwright's own browser download is never used.
``.ci/run`` installs the package when it is missing, and so do these tests when they run
as root where apt-get is. Only when it can be neither found nor installed do they skip,
saying why; under CI (``CI`` set) they fail instead: CI must run them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, SPACE, LiveServer, make_config

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium")
# Quiet and offline: no component updates, sync or other calls home (the machine's network
# refuses them, and they would only slow the start).
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-gpu",
    "--no-first-run",
    "--disable-quic",
]
EXPECT_TIMEOUT_MS = 10_000
HANDLED = "Failed to load resource: the server responded with a status of 4"


def find_chromium() -> str | None:
    if given := os.environ.get("EMIT_CHROMIUM"):
        return given if Path(given).exists() else None
    for path in CHROMIUM_PATHS:
        if Path(path).exists():
            return path
    return shutil.which("chromium") or shutil.which("chromium-browser")


def install_chromium() -> str | None:
    """Debian's chromium, installed with apt-get when we may (root); None when not."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        try:
            subprocess.run(command, env=env, capture_output=True, timeout=600, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
    return find_chromium()


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the browser tests: .ci/run installs Chromium)")
    pytest.skip(reason)


# Module scope: one browser for test_browser.py, closed at its end. Sync Playwright keeps
# its event loop marked running in this thread while it is open, which the async tests
# that run after it (anyio) could not bear.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is not installed: pip install -e '.[dev]'")
    path = find_chromium() or install_chromium()
    if path is None:
        unavailable(
            "Chromium not found, and apt-get could not install it here: apt-get install"
            " chromium (Debian's package), or set EMIT_CHROMIUM to a Chromium binary"
        )
    assert path is not None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Dash:
    """The server on uvicorn, an admin API client, and the dashboard's address."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.origin = server.base_url.removesuffix("/api/v1")
        self.url = self.origin + "/dashboard/"
        self.api = httpx.Client(
            base_url=server.base_url, headers={"x-api-key": ADMIN_KEY}, trust_env=False
        )

    def create(self, spec: dict[str, Any] | list[dict[str, Any]]) -> Any:
        response = self.api.post(f"/spaces/{SPACE}/jobs", json=spec)
        assert response.status_code == 201, response.text
        return response.json()

    def call(self, job_id: str, action: str, body: Any = None) -> Any:
        response = self.api.post(f"/jobs/{job_id}/{action}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def logs(self, job_id: str, *lines: dict[str, Any]) -> None:
        import json

        body = "".join(json.dumps(line) + "\n" for line in lines)
        response = self.api.post(
            f"/jobs/{job_id}/logs", content=body, headers={"content-type": "application/x-ndjson"}
        )
        assert response.status_code == 200, response.text

    def job(self, job_id: str) -> Any:
        return self.api.get(f"/jobs/{job_id}").json()


@pytest.fixture
def dash(tmp_path: Path) -> Iterator[Dash]:
    server = LiveServer(make_config(db_path=str(tmp_path / "emit.sqlite3"), push_retry_delays=()))
    dash = Dash(server)
    yield dash
    dash.api.close()
    server.stop()


@pytest.fixture
def page(browser: Browser, dash: Dash) -> Iterator[Page]:
    """A fresh page; it must log no error, and ask nothing of any other origin."""
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(EXPECT_TIMEOUT_MS)
    errors: list[str] = []
    elsewhere: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda message: (
            errors.append(f"console: {message.text}")
            # An API call answered 4xx: the page shows it (Chromium logs each one too).
            if message.type == "error" and not message.text.startswith(HANDLED)
            else None
        ),
    )
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith((dash.origin, dash.origin.replace("http", "ws", 1), "data:"))
            else elsewhere.append(request.url)
        ),
    )
    yield page
    context.close()
    assert not elsewhere, f"the page asked another origin: {elsewhere}"
    assert not errors, errors
