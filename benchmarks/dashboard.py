"""The dashboard's own weight and first render, in a real headless Chromium.

1. **Weight**: the bytes of HTML, CSS and JavaScript the package ships for the page, as
   files and gzipped as the server sends them (it gzips files of 1 KiB or more), and what
   the browser counted on the wire for one cold load (the Resource Timing API).
2. **First render**: with ``--jobs`` jobs in the space (1,000, and 100,000 by default), the
   time from navigation to a populated table (the first page of 50 rows): the page's own
   ``emit:jobs-table`` mark (milliseconds since navigation start) and the wall time around
   ``page.goto`` until the rows are there, each the median of ``--runs`` cold loads (a new
   browser context each: no cache). Then paging: ``Older ›`` ten pages deep (keyset
   cursor) and a filter by name, each timed from the click to the new rows.

The server is ``emit-push server`` on 127.0.0.1, in a process of its own, on a file
database filled beforehand through the engine (as ``server_backlog.py`` does). Chromium is Debian's
(``/usr/bin/chromium`` or ``EMIT_CHROMIUM``), driven by Playwright for Python.

    python benchmarks/dashboard.py [--jobs 1000 100000] [--runs 5]
    python benchmarks/dashboard.py --screenshots docs     # the README's pictures
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from emit_push.server import EmitServer, ServerConfig
from emit_push.server._records import NewJob

SPACE = "01JBENCHDASHB0ARD000000000"
NAMES = ("send-email", "resize-image", "transcode-video", "nightly-report", "slow-export")
CHUNK = 1000
DASHBOARD = Path(__file__).resolve().parents[1] / "emit_push" / "server" / "dashboard"
FLAGS = ["--disable-background-networking", "--disable-component-update", "--no-first-run"]
SHOT_KEY = "emit_screenshot_key"
SHOT_SCOPES = "jobs:worker,jobs:create,jobs:kill,space:admin"


def weight() -> None:
    print("weight (files the package ships for the page):")
    raw = packed = 0
    for path in sorted(p for p in DASHBOARD.rglob("*") if p.is_file()):
        body = path.read_bytes()
        static = path.parent.name == "static" and len(body) >= 1024  # the page: not gzipped
        size = len(gzip.compress(body, 9, mtime=0)) if static else len(body)
        raw += len(body)
        packed += size
        print(f"  {str(path.relative_to(DASHBOARD)):<20} {len(body):>7,} B  {size:>6,} B sent")
    print(f"  {'total':<20} {raw:>7,} B  {packed:>6,} B sent (gzip)")


async def fill(db: Path, count: int) -> None:
    """``count`` jobs in five names; the newest few running and finished, the rest pending."""
    async with EmitServer(ServerConfig(db_path=str(db), space_id=SPACE)) as server:
        for start in range(0, count, CHUNK):
            n = min(CHUNK, count - start)
            specs = [
                NewJob(NAMES[(start + i) % len(NAMES)], '{"n":1}', 3, 300, None, None, None)
                for i in range(n)
            ]
            server.engine.create(SPACE, specs)
            server.store.commit_group()
        await server.store.durable()


class Serve:
    """``emit-push server`` on the filled database, in a process of its own, as a user
    runs it (so that the browser's driver and the server share no interpreter)."""

    def __init__(self, db: Path, flags: list[str] | None = None) -> None:
        command = [sys.executable, "-m", "emit_push.cli", "server", "--port", "0"]
        command += ["--db", str(db), "--space-id", SPACE, *(flags or [])]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        first = self.process.stdout.readline()  # emit local server  http://.../api/v1
        if not first.startswith("emit local server"):
            self.stop()
            raise SystemExit(f"emit-push server did not start: {first!r}")
        self.url = first.split()[-1].removesuffix("/api/v1") + "/dashboard/"

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(10)


def chromium() -> str:
    path = os.environ.get("EMIT_CHROMIUM", "/usr/bin/chromium")
    if not Path(path).exists():
        raise SystemExit(f"no Chromium at {path}: apt-get install chromium, or set EMIT_CHROMIUM")
    return path


def cold_load(browser: Any, url: str) -> tuple[float, float, int, Any]:
    """(page's mark ms, wall ms, bytes on the wire, the page) for one load, new context."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    started = time.perf_counter()
    page.goto(url)
    # Locator waits, not wait_for_function: the page's CSP forbids the eval that needs.
    page.locator("body[data-jobs-loaded] tbody tr").first.wait_for()
    wall = (time.perf_counter() - started) * 1000
    mark = page.evaluate("performance.getEntriesByName('emit:jobs-table')[0].startTime")
    wire = page.evaluate(  # the page's own files: not the API's answers (fetch)
        """() => [...performance.getEntriesByType('navigation'),
                  ...performance.getEntriesByType('resource')]
                 .filter(e => e.initiatorType !== 'fetch')
                 .reduce((sum, e) => sum + (e.encodedBodySize || 0), 0)"""
    )
    return mark, wall, wire, page


def timed_change(page: Any, action: Any) -> float:
    """Milliseconds, by the page's clock, from the click of ``action()`` to the next page
    of rows shown (the page marks ``emit:jobs-table`` and counts ``data-jobs-loaded``)."""
    shown = page.evaluate("Number(document.body.dataset.jobsLoaded)")
    page.evaluate(
        "document.addEventListener('click', () => { window.clickedAt = performance.now() },"
        " {capture: true, once: true})"
    )
    action()
    page.locator(f"body[data-jobs-loaded='{shown + 1}']").wait_for(state="attached")
    marks = page.evaluate("performance.getEntriesByName('emit:jobs-table').map(m => m.startTime)")
    return float(marks[-1] - page.evaluate("window.clickedAt"))


def render(size: int, runs: int, browser: Any, folder: Path) -> None:
    print(f"\n{size:,} jobs:")
    serve = Serve(folder / f"dash-{size}.sqlite3")
    try:
        loads = [cold_load(browser, serve.url) for _ in range(runs)]
        marks = [mark for mark, _, _, _ in loads]
        page = loads[-1][3]
        for *_, other in loads[:-1]:
            other.context.close()
        rows = page.locator("tbody tr").count()
        print(
            f"  first render, page's mark   {statistics.median(marks):7.0f} ms median"
            f"  (min {min(marks):.0f}, max {max(marks):.0f}; {rows} rows)"
        )
        walls = [wall for _, wall, _, _ in loads]
        print(f"  goto to populated table     {statistics.median(walls):7.0f} ms median")
        wire = statistics.median(wire for _, _, wire, _ in loads)
        print(
            f"  bytes on the wire (cold)    {wire:7,.0f} B (HTML, CSS, JS; not the API's answers)"
        )
        older = page.get_by_role("button", name="Older ›")
        deep = min(10, (size - 1) // rows)  # pages there are to turn
        if deep:
            pages = [timed_change(page, older.click) for _ in range(deep)]
            median = statistics.median(pages)
            label = f"Older ›, {deep} pages deep"
            print(f"  {label:<27} {median:7.0f} ms median per page")
        page.get_by_label("Filter by job name").fill("nightly-report")
        filtered = timed_change(page, page.get_by_role("button", name="Filter").click)
        print(f"  filter by name              {filtered:7.0f} ms")
        page.context.close()
    finally:
        serve.stop()


def screenshots(browser: Any, folder: Path, out: Path) -> None:
    """The README's pictures: a space with jobs in every state, and one job running."""
    import httpx

    serve = Serve(folder / "screenshots.sqlite3", ["--api-key", f"{SHOT_KEY}={SHOT_SCOPES}"])
    api = httpx.Client(
        base_url=serve.url.replace("/dashboard/", "/api/v1"), headers={"x-api-key": SHOT_KEY}
    )

    def create(name: str, **spec: Any) -> str:
        answer = api.post(f"/spaces/{SPACE}/jobs", json={"name": name, **spec})
        answer.raise_for_status()
        return str(answer.json()["id"])

    def step(job_id: str, action: str, body: Any = None) -> None:
        api.post(f"/jobs/{job_id}/{action}", json=body).raise_for_status()

    def run(job_id: str, *progress: float) -> None:
        step(job_id, "claim")
        step(job_id, "ack")
        for percent in progress:
            step(job_id, "progress", {"percent": percent, "message": f"{percent:g}% done"})

    def logs(job_id: str, *lines: tuple[str, str, dict[str, Any] | None]) -> None:
        body = "".join(
            json.dumps({"level": level, "message": message, "source": "worker", "metadata": meta})
            + "\n"
            for level, message, meta in lines
        )
        headers = {"content-type": "application/x-ndjson"}
        api.post(f"/jobs/{job_id}/logs", content=body, headers=headers).raise_for_status()

    try:
        for n in range(3):
            job_id = create("send-welcome-email", payload={"to": f"user{n}@example.com"})
            run(job_id, 100)
            step(job_id, "complete", {"result": {"messageId": f"msg-{n}"}})
        dead = create("sync-crm", payload={"account": 42}, maxRetries=0)
        run(dead, 20)
        step(dead, "fail", {"error": "CRM answered 502 Bad Gateway"})
        killed = create("slow-export", payload={"table": "orders"})
        run(killed, 10, 30)
        step(killed, "kill", {"reason": "exported the wrong table"})
        later = datetime.now(UTC) + timedelta(hours=1)
        create("nightly-report", payload={"day": "2026-11-01"}, scheduledFor=later.isoformat())
        retried = create("resize-image", payload={"url": "s3://img/cat.png", "width": 640})
        run(retried, 30)
        step(retried, "fail", {"error": "image service timed out"})
        run(retried, 45)
        video = create(
            "transcode-video", payload={"source": "talk.mov", "formats": ["720p", "1080p"]}
        )
        run(video)
        stages = {"download": 100, "720p": 80, "1080p": 40, "upload": 0}
        sub = {name: {"percent": p} for name, p in stages.items()}
        step(video, "progress", {"percent": 55, "message": "1080p 40%", "subProgress": sub})
        logs(
            video,
            ("info", "downloaded talk.mov", {"bytes": 734003200}),
            ("info", "720p: encoding", None),
            ("warn", "1080p: falling back to software encoding", {"gpu": False}),
            ("info", "720p: 80%", None),
        )
        step(video, "checkpoint", {"stages": ["download"]})
        for n in range(2):
            create("send-welcome-email", payload={"to": f"new{n}@example.com"})

        context = browser.new_context(viewport={"width": 1280, "height": 640})
        page = context.new_page()
        page.goto(serve.url)
        page.locator("body[data-jobs-loaded] tbody tr").nth(9).wait_for()
        page.locator("#live.on").wait_for()
        page.screenshot(path=str(out / "dashboard.png"))
        page.set_viewport_size({"width": 1280, "height": 1000})
        page.goto(f"{serve.url}#/jobs/{video}")
        page.locator(".logline").nth(3).wait_for()
        page.get_by_text("● live").wait_for()
        page.screenshot(path=str(out / "dashboard-job.png"), full_page=True)
        context.close()
        print(f"screenshots: {out / 'dashboard.png'}, {out / 'dashboard-job.png'}")
    finally:
        api.close()
        serve.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--screenshots", type=Path, metavar="DIR", help="only take the README's pictures, here"
    )
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    if args.screenshots:
        with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium(), args=FLAGS)
            screenshots(browser, Path(tmp), args.screenshots)
            browser.close()
        return
    weight()
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.jobs:  # before Playwright, whose loop would be this thread's
            started = time.perf_counter()
            asyncio.run(fill(Path(tmp) / f"dash-{size}.sqlite3", size))
            print(f"{size:,} jobs made in {time.perf_counter() - started:.1f} s")
        with sync_playwright() as playwright:
            run_browser(playwright, args, Path(tmp))


def run_browser(playwright: Any, args: argparse.Namespace, folder: Path) -> None:
    browser = playwright.chromium.launch(executable_path=chromium(), args=FLAGS)
    try:
        for size in args.jobs:
            render(size, args.runs, browser, folder)
    finally:
        browser.close()


if __name__ == "__main__":
    main()
