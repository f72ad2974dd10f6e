"""Lambda specifics through the real runtime client: every event shape, and the answer
to API Gateway's own routes and stages."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ADMIN_KEY, SPACE, LiveServer
from tests.harnesses.events import SHAPES, Shape, build_event
from tests.runtimes.conftest import AUTH, Lambda


@pytest.fixture(scope="module")
def function(live: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lambda]:
    runtime = Lambda(live, tmp_path_factory.mktemp("lambda-spans") / "spans.jsonl")
    yield runtime
    runtime.close()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("path", ["/", "/emit/push"])
def test_every_event_shape_and_path(
    function: Lambda, live: LiveServer, shape: Shape, path: str
) -> None:
    with httpx.Client(base_url=live.base_url, headers={"x-api-key": ADMIN_KEY}) as admin:
        ref = admin.post(f"/spaces/{SPACE}/jobs", json={"name": "ok-sync", "payload": shape})
        job_id = ref.json()["id"]
        body = {"type": "job.pending", "jobId": job_id, "name": "ok-sync"}
        event = build_event(shape, body, {"authorization": None, **AUTH}, path=path)
        answer = function.runtime.invoke(event, deadline_in=20)
        assert answer["statusCode"] == 200
        job = admin.get(f"/jobs/{job_id}").json()
    assert (job["status"], job["result"]["payload"]) == ("completed", shape)


def test_a_base64_body_is_decoded(function: Lambda, live: LiveServer) -> None:
    with httpx.Client(base_url=live.base_url, headers={"x-api-key": ADMIN_KEY}) as admin:
        job_id = admin.post(f"/spaces/{SPACE}/jobs", json={"name": "ok-async"}).json()["id"]
        body = {"jobId": job_id, "name": "ok-async"}
        event = build_event(SHAPES[0], body, {"authorization": None, **AUTH}, base64_body=True)
        assert function.runtime.invoke(event, deadline_in=20)["statusCode"] == 200
        assert admin.get(f"/jobs/{job_id}").json()["status"] == "completed"
