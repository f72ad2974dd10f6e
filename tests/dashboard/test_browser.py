"""The dashboard in a real headless Chromium, against the server on uvicorn (loopback).

Each test drives jobs with raw API calls (as a worker would) and watches the page follow
through its streams, or acts in the page and checks the server. ``expect`` waits (up to
10 s) for what the page shows: no sleeps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, OTHER_KEY, PRODUCER_KEY, SPACE, WORKER_KEY
from tests.dashboard.conftest import Dash
from tests.receiver import Receiver
from tests.waiting import wait_for

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the browser fixture skips (or fails, under CI) saying why
    Page = Any  # type: ignore[misc,assignment]

pytestmark = pytest.mark.slow  # a real browser: about a second each


def row(page: Page, job_id: str) -> Any:
    return page.locator(f"tbody tr[data-id='{job_id}']")


def open_job(page: Page, dash: Dash, job_id: str) -> None:
    page.goto(f"{dash.url}#/jobs/{job_id}")
    expect(page.get_by_text("● live")).to_be_visible()  # its stream is open


def test_jobs_created_through_the_api_appear_live(page: Page, dash: Dash) -> None:
    page.goto(dash.url)
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator(".empty")).to_contain_text("No jobs yet")

    first, second = dash.create([{"name": "send-email"}, {"name": "resize"}])
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.locator("tbody tr").first).to_have_attribute("data-id", second["id"])  # newest
    for ref, name in ((first, "send-email"), (second, "resize")):
        expect(row(page, ref["id"]).locator("td.name")).to_have_text(name)
        # The status is a word (and a glyph), not a colour alone.
        expect(row(page, ref["id"]).locator(".status")).to_contain_text("pending")
    chips = page.get_by_role("group", name="Filter by status")
    expect(chips.locator("[data-status='pending'] .n")).to_have_text("2")

    job_id = first["id"]
    dash.call(job_id, "claim")
    dash.call(job_id, "ack")
    expect(row(page, job_id).locator(".status")).to_contain_text("running")
    dash.call(job_id, "progress", {"percent": 40, "message": "halfway"})
    expect(row(page, job_id).locator(".pct")).to_have_text("40%")
    expect(row(page, job_id).locator("progress")).to_have_js_property("value", 40)
    dash.call(job_id, "complete", {"result": {"ok": True}})
    expect(row(page, job_id).locator(".status")).to_contain_text("completed")
    expect(chips.locator("[data-status='completed'] .n")).to_have_text("1")
    expect(chips.locator("[data-status='pending'] .n")).to_have_text("1")

    dash.call(second["id"], "kill", {"reason": "not needed"})
    expect(row(page, second["id"]).locator(".status")).to_contain_text("killed")
    expect(chips.locator("[data-status='killed'] .n")).to_have_text("1")
    expect(chips.locator("[data-status='pending'] .n")).to_have_text("0")


# Frames on hold: what the stream says between two frames is only drawn at the next one.
HOLD_FRAMES = """
window.__hold = false;
window.__frames = [];
const nativeFrame = window.requestAnimationFrame.bind(window);
window.requestAnimationFrame = (cb) => window.__hold ? window.__frames.push(cb) : nativeFrame(cb);
window.__seen = [];
const NativeSocket = window.WebSocket;
window.WebSocket = class extends NativeSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (e) => window.__seen.push(JSON.parse(e.data).type));
  }
};
"""


def test_a_job_that_ends_before_its_row_is_drawn_shows_how_it_ended(page: Page, dash: Dash) -> None:
    page.add_init_script(HOLD_FRAMES)
    page.goto(dash.url)
    expect(page.locator("#live")).to_have_text("live")
    page.evaluate("window.__hold = true")
    job_id = dash.create({"name": "quick"})["id"]
    for action in ("claim", "ack"):
        dash.call(job_id, action)
    dash.call(job_id, "complete", {"result": 1})
    page.wait_for_function("window.__seen.includes('completed')")
    page.evaluate("window.__hold = false; window.__frames.splice(0).forEach((cb) => cb())")
    expect(row(page, job_id).locator(".status")).to_contain_text("completed")


def test_filters_search_and_pages(page: Page, dash: Dash) -> None:
    refs = dash.create([{"name": "a" if i % 3 else "b"} for i in range(30)])
    page.goto(f"{dash.url}#/?limit=25")
    expect(page.locator("tbody tr")).to_have_count(25)
    page.get_by_role("button", name="Older ›").click()
    expect(page.locator("tbody tr")).to_have_count(5)
    expect(page.locator("tbody tr").last).to_have_attribute("data-id", refs[0]["id"])
    page.get_by_role("button", name="‹ Newer").click()
    expect(page.locator("tbody tr")).to_have_count(25)
    expect(page.locator("tbody tr").first).to_have_attribute("data-id", refs[-1]["id"])

    page.get_by_label("Filter by job name").fill("b")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(10)
    expect(page.locator("tbody td.name")).to_have_text(["b"] * 10)
    dash.create({"name": "a"})  # another name: stays out of this view
    dash.create({"name": "b"})
    expect(page.locator("tbody tr")).to_have_count(11)

    dash.call(refs[3]["id"], "kill")
    page.goto(f"{dash.url}#/?status=killed")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr").first).to_have_attribute("data-id", refs[3]["id"])

    # Search by id: "/" focuses it; an unknown id says so; a known one opens the job.
    page.keyboard.press("/")
    expect(page.get_by_label("Find a job by id")).to_be_focused()
    page.keyboard.type("01NOSUCHJOB")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert").filter(has_text="No job has the id")).to_be_visible()
    page.get_by_label("Find a job by id").fill(refs[7]["id"])
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(f"#/jobs/{refs[7]['id']}$"))


def test_the_table_works_from_the_keyboard(page: Page, dash: Dash) -> None:
    refs = dash.create([{"name": "k"} for _ in range(3)])
    page.goto(dash.url)
    expect(page.locator("tbody tr")).to_have_count(3)
    links = page.locator("tbody td.id a")
    links.first.focus()
    page.keyboard.press("ArrowDown")
    expect(links.nth(1)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(f"#/jobs/{refs[1]['id']}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("k")
    page.keyboard.press("Escape")
    expect(page).to_have_url(re.compile(r"/dashboard/(#/)?$"))


def test_a_job_page_shows_progress_moving_and_logs_arriving(page: Page, dash: Dash) -> None:
    job_id = dash.create({"name": "transcode", "payload": {"source": "talk.mov"}})["id"]
    dash.call(job_id, "claim")
    dash.call(job_id, "ack")
    open_job(page, dash, job_id)
    expect(page.locator("pre[aria-label='Payload']")).to_contain_text('"source": "talk.mov"')
    expect(page.locator(".logbox")).to_be_empty()

    dash.call(job_id, "progress", {"percent": 25, "message": "downloading"})
    expect(page.locator(".progress-box .pct").first).to_have_text("25%")
    expect(page.locator(".progress-box .msg")).to_have_text("downloading")
    bar = page.get_by_role("progressbar", name="Progress", exact=True)
    expect(bar).to_have_js_property("value", 25)

    dash.logs(
        job_id,
        {"level": "info", "message": "fetched 10 MB", "source": "fetch", "metadata": {"mb": 10}},
    )
    lines = page.locator(".logline")
    expect(lines).to_have_count(1)
    expect(lines.first).to_contain_text("fetched 10 MB")
    expect(lines.first.locator(".src")).to_have_text("fetch")
    expect(lines.first.locator(".lvl")).to_have_text("info")
    expect(lines.first.locator("summary")).to_contain_text('{"mb":10}')

    sub = {"download": {"percent": 100}, "encode": {"percent": 60, "message": "h264"}}
    dash.call(job_id, "progress", {"percent": 80, "message": "encoding", "subProgress": sub})
    expect(bar).to_have_js_property("value", 80)
    expect(page.get_by_role("progressbar", name="encode progress")).to_have_js_property("value", 60)
    dash.logs(
        job_id,
        {"level": "warn", "message": "slow disk"},
        {"level": "error", "message": "retrying a chunk", "source": "encoder"},
    )
    expect(lines).to_have_count(3)
    expect(lines.nth(2)).to_have_class(re.compile("l-error"))

    dash.call(job_id, "checkpoint", {"chunk": 7})
    expect(page.locator("pre[aria-label='Checkpoint']")).to_contain_text('"chunk": 7')
    dash.call(job_id, "complete", {"result": {"url": "s3://out/talk.mp4"}})
    expect(page.locator(".head .status")).to_contain_text("completed")
    expect(page.locator("pre[aria-label='Result']")).to_contain_text("s3://out/talk.mp4")
    timeline = page.locator("table.timeline tbody td.type")
    expect(timeline).to_contain_text(
        ["created", "delivered", "running", "progress", "progress", "checkpoint", "completed"]
    )
    expect(page.get_by_role("button", name="Kill…")).to_have_count(0)
    # A line sent after the end (a final flush) arrives with a refresh: the stream is over.
    dash.logs(job_id, {"level": "info", "message": "flushed after the end"})
    page.get_by_role("button", name="Refresh").click()
    expect(lines).to_have_count(4)


def test_kill_from_the_page_with_the_keyboard(page: Page, dash: Dash) -> None:
    job_id = dash.create({"name": "slow-export"})["id"]
    dash.call(job_id, "claim")
    dash.call(job_id, "ack")
    open_job(page, dash, job_id)
    page.get_by_role("button", name="Kill…").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Reason for the kill")).to_be_focused()
    page.keyboard.type("wrong input")
    page.keyboard.press("Enter")
    expect(page.locator(".head .status")).to_contain_text("killed")
    job = dash.job(job_id)
    assert (job["status"], job["result"]) == ("killed", {"reason": "wrong input"})
    expect(page.locator("table.timeline td.type").last).to_have_text("killed")
    expect(page.get_by_role("button", name="Kill…")).to_have_count(0)


def test_create_from_the_page(page: Page, dash: Dash) -> None:
    page.goto(f"{dash.url}#/new")
    page.get_by_label("Name").fill("send-email")
    payload = page.get_by_label("Payload (JSON)")
    payload.fill('{"to": ')
    expect(page.get_by_text("Not valid JSON")).to_be_visible()
    expect(payload).to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Create job").click()
    assert dash.api.get(f"/spaces/{SPACE}/jobs").json() == []  # nothing sent

    payload.fill('{"to": "ada@example.com"}')
    page.get_by_label("Max retries").fill("5")
    page.get_by_label("Timeout (seconds)").fill("60")
    page.get_by_role("button", name="Create job").click()
    expect(page).to_have_url(re.compile(r"#/jobs/\w+$"))
    job_id = page.url.rpartition("/")[2]
    expect(page.get_by_role("heading", level=1)).to_have_text("send-email")
    job = dash.job(job_id)
    assert {k: job[k] for k in ("name", "payload", "maxRetries", "timeoutSeconds", "status")} == {
        "name": "send-email",
        "payload": {"to": "ada@example.com"},
        "maxRetries": 5,
        "timeoutSeconds": 60,
        "status": "pending",
    }

    page.goto(f"{dash.url}#/new")
    page.get_by_label("Name").fill("nightly-report")
    page.get_by_label("Delay (seconds)").fill("3600")
    page.get_by_label("How many").fill("3")
    page.get_by_role("button", name="Create 3 jobs").click()
    expect(page.locator("tbody td.name", has_text="nightly-report")).to_have_count(3)
    expect(page.locator("tbody tr[data-status='scheduled']")).to_have_count(3)
    listed = dash.api.get(f"/spaces/{SPACE}/jobs", params={"status": "scheduled"}).json()
    assert [job["name"] for job in listed] == ["nightly-report"] * 3


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver([500, 503])  # the first two pushes fail, then 200
    yield receiver
    receiver.stop()


def test_push_settings_round_trip(page: Page, dash: Dash, receiver: Receiver) -> None:
    page.goto(f"{dash.url}#/space")
    expect(page.get_by_text("Push is off")).to_be_visible()
    url = f"{receiver.url}/emit"
    page.get_by_label("URL").fill(url)
    page.get_by_role("button", name="Add header").click()
    page.get_by_label("Header name").fill("Authorization")
    page.get_by_label("Value of the header").fill("Bearer s3cret")
    page.get_by_label("Job names").fill("send-email, resize")
    page.get_by_role("button", name="Save push settings").click()
    expect(page.get_by_text("Push is on")).to_be_visible()
    expected = {
        "url": url,
        "headers": {"Authorization": "Bearer s3cret"},
        "jobNames": ["resize", "send-email"],
    }
    assert dash.api.get(f"/spaces/{SPACE}/push").json() == expected

    # And back: what the server holds fills the form (the header's value hidden).
    changed = {"url": url + "/v2", "headers": {"X-Env": "dev"}, "jobNames": None}
    assert dash.api.put(f"/spaces/{SPACE}/push", json=changed).status_code == 200
    page.reload()
    expect(page.get_by_label("URL")).to_have_value(url + "/v2")
    expect(page.get_by_label("Header name")).to_have_value("X-Env")
    value = page.get_by_label("Value of X-Env")
    expect(value).to_have_value("dev")
    expect(value).to_have_attribute("type", "password")
    expect(page.get_by_label("Job names")).to_have_value("")

    # Turned off from the page.
    page.get_by_label("URL").fill("")
    page.get_by_role("button", name="Remove header X-Env").click()
    page.get_by_role("button", name="Save push settings").click()
    expect(page.get_by_text("Push is off")).to_be_visible()
    assert dash.api.get(f"/spaces/{SPACE}/push").json() == {
        "url": None,
        "headers": {},
        "jobNames": None,
    }


def test_a_failed_push_is_marked_on_its_row(page: Page, dash: Dash, receiver: Receiver) -> None:
    assert dash.api.put(f"/spaces/{SPACE}/push", json={"url": receiver.url}).status_code == 200
    page.goto(dash.url)
    expect(page.locator("#live")).to_have_text("live")
    job_id = dash.create({"name": "resize"})["id"]
    mark = row(page, job_id).locator(".push-failed")
    expect(mark).to_be_visible()
    expect(mark).to_have_attribute("title", re.compile(r"^HTTP 500"))
    dash.api.post(f"/spaces/{SPACE}/repush", json={"jobIds": [job_id]}).raise_for_status()
    expect(mark).to_have_attribute("title", re.compile(r"^HTTP 503"))
    dash.api.post(f"/spaces/{SPACE}/repush", json={"jobIds": [job_id]}).raise_for_status()
    expect(mark).to_be_hidden()  # the last push went through
    expect(row(page, job_id).locator(".status")).to_contain_text("pending")


def test_keys_are_masked_and_counts_shown(page: Page, dash: Dash) -> None:
    dash.create([{"name": "x"}, {"name": "y"}])
    page.goto(f"{dash.url}#/space")
    keys = page.get_by_role("table").first
    expect(keys.locator("tbody tr")).to_have_count(5)  # worker, producer, progress, admin + page's
    expect(keys).to_contain_text("dashboard (this page; in memory)")
    expect(keys).to_contain_text("jobs:worker")
    expect(page.locator(".count").filter(has_text="pending").locator("strong")).to_have_text("2")
    html = page.content()
    for key in (ADMIN_KEY, WORKER_KEY, PRODUCER_KEY, OTHER_KEY):
        assert key not in html
    page_key = page.evaluate("JSON.parse(document.getElementById('emit-config').textContent).key")
    assert page_key.startswith("emit_dash_")
    assert page_key not in page.locator("body").inner_text()


def attempts(dash: Dash, job_id: str, count: int) -> None:
    """Wait until the server has recorded ``count`` push attempts of the job."""
    wait_for(
        lambda: (
            len([e for e in dash.job(job_id)["events"] if e["type"].startswith("push_")]) >= count
        ),
        message=f"{count} push attempts recorded",
    )


def test_push_attempts_and_re_push(page: Page, dash: Dash, receiver: Receiver) -> None:
    settings = {"url": f"{receiver.url}/emit", "headers": {"Authorization": "Bearer s3cret"}}
    assert dash.api.put(f"/spaces/{SPACE}/push", json=settings).status_code == 200
    job_id = dash.create({"name": "resize"})["id"]
    attempts(dash, job_id, 1)

    open_job(page, dash, job_id)
    failed = page.locator("table.timeline tr[data-type='push_failed']")
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text("HTTP 500")
    expect(failed).to_contain_text(f"url {receiver.url}/emit")
    page.get_by_role("button", name="Re-push").click()
    expect(failed).to_have_count(2)  # streamed: the page shows it as it is recorded
    expect(failed.nth(1)).to_contain_text("HTTP 503")
    page.get_by_role("link", name="Space & push").click()
    deliveries = page.locator(
        "section", has=page.get_by_role("heading", name="Last push deliveries")
    )
    expect(deliveries.locator("tbody tr")).to_have_count(2)
    # Pushed again from elsewhere (no status changes): the table takes it from the stream.
    repushed = dash.api.post(f"/spaces/{SPACE}/repush", json={"jobIds": [job_id]})
    assert repushed.json() == {"queued": 1}
    expect(deliveries.locator("tbody tr")).to_have_count(3)
    expect(deliveries.locator("tbody tr").first).to_contain_text("✓ sent")
    expect(deliveries.locator("tbody tr").nth(2)).to_contain_text("✕ failed")
    expect(deliveries.locator("tbody tr").nth(2)).to_contain_text("500")
    assert len(receiver.requests) == 3
    assert receiver.requests[2].headers["authorization"] == "Bearer s3cret"
    page.locator(f"a[href='#/jobs/{job_id}']").first.click()
    expect(page.locator("table.timeline tr[data-type='push_sent']")).to_have_count(1)

    # A job that is not pending has no re-push.
    dash.call(job_id, "claim")
    page.goto(f"{dash.url}#/jobs/{job_id}")
    expect(page.get_by_role("button", name="Re-push")).to_have_count(0)
