"""examples/django_app/ on real uvicorn on 127.0.0.1, with the local emit server pushing.

The project's ``asgi.application`` is served as ``uvicorn examples.django_app.asgi:application``
would serve it: its lifespan runs, pushes to /emit/ reach emit-push, every other path
reaches Django.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import SPACE, WORKER_KEY, LiveServer, ServeThread
from tests.waiting import wait_for

SECRET = "django-example-secret"
AUTH = {"Authorization": f"Bearer {SECRET}"}
FINISHED = ("completed", "failed", "dead", "killed")


@pytest.fixture
def site(live: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The project on uvicorn, configured for the local server as a deploy would be."""
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "examples.django_app.settings")
    monkeypatch.setenv("EMIT_SPACE_ID", SPACE)
    monkeypatch.setenv("EMIT_API_KEY", WORKER_KEY)
    monkeypatch.setenv("EMIT_BASE_URL", live.base_url)
    monkeypatch.setenv("EMIT_PUSH_SECRET", SECRET)
    asgi = importlib.import_module("examples.django_app.asgi")
    served = ServeThread(asgi.application)  # the lifespan closes the app's client at stop
    yield served.url
    served.stop()


def finished(admin: httpx.Client, job_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        job: dict[str, Any] = admin.get(f"/jobs/{job_id}").json()
        return job if job["status"] in FINISHED else None

    job = wait_for(ended, message=f"job {job_id} to end")
    assert job is not None
    return job


def test_a_pushed_job_completes_beside_django(site: str, admin: httpx.Client) -> None:
    push = {"url": f"{site}/emit/", "headers": AUTH}
    assert admin.put(f"/spaces/{SPACE}/push", json=push).status_code == 200
    created = admin.post(
        f"/spaces/{SPACE}/jobs",
        json={"name": "invoice", "payload": {"order_id": "A-17", "amount_cents": 4200}},
    )
    job_id = created.json()["id"]

    job = finished(admin, job_id)
    assert (job["status"], job["result"]) == ("completed", {"invoice": "s3://invoices/A-17.pdf"})
    assert job["progress"]["percent"] == 50
    logs = admin.get(f"/jobs/{job_id}/logs").json()["logs"]
    assert [(e["message"], e["metadata"]) for e in logs] == [("invoicing", {"order": "A-17"})]


def test_django_still_answers_every_other_path(site: str) -> None:
    with httpx.Client(base_url=site, trust_env=False) as http:
        index = http.get("/")
        assert (index.status_code, index.json()) == (
            200,
            {"service": "example", "pushes": "/emit/"},
        )
        assert http.get("/nope/").status_code == 404  # Django's not-found
        assert http.get("/emit/health").json() == {"status": "ok"}  # emit-push's own
        refused = http.post("/emit/", json={"jobId": "x"}, headers={"Authorization": "no"})
        assert refused.status_code == 401
