"""Retries: the pure policy, then 503/429/dropped connections injected between the client
and the live server, and the rule that a retry never turns a success into an error."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from emit_push import (
    APIConnectionError,
    APITimeoutError,
    ConflictError,
    EmitClient,
    JobKilledError,
    RateLimitError,
    ServerError,
)
from emit_push._exceptions import APIError, BadRequestError
from emit_push._wire.retry import RetryPolicy
from tests.sdk.conftest import Faults, Sdk

# -- the policy, pure ----------------------------------------------------------------


def _server_error(status: int = 503, retry_after: float | None = None) -> APIError:
    kind = RateLimitError if status == 429 else ServerError
    return kind("x", status=status, retry_after=retry_after)


def _dropped(sent: bool) -> APIConnectionError:
    return APIConnectionError("x", method="POST", url="u", request_sent=sent)


def test_backoff_doubles_with_jitter_in_the_upper_half() -> None:
    low = RetryPolicy(max_retries=10, initial_delay=0.5, max_delay=4.0, random=lambda: 0.0)
    high = RetryPolicy(max_retries=10, initial_delay=0.5, max_delay=4.0, random=lambda: 1.0)
    error = _server_error()
    assert [low.delay("idempotent", error, n) for n in range(5)] == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert [high.delay("idempotent", error, n) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_retries_stop_after_max_retries() -> None:
    policy = RetryPolicy(max_retries=2)
    assert policy.delay("idempotent", _server_error(), 1) is not None
    assert policy.delay("idempotent", _server_error(), 2) is None


def test_retry_after_is_honoured_up_to_a_ceiling() -> None:
    policy = RetryPolicy(max_retry_after=60)
    assert policy.delay("idempotent", _server_error(429, retry_after=7.5), 0) == 7.5
    assert policy.delay("idempotent", _server_error(503, retry_after=3), 0) == 3
    assert policy.delay("idempotent", _server_error(429, retry_after=120), 0) is None


@pytest.mark.parametrize(
    ("error", "idempotent", "unprocessed"),
    [
        (_server_error(503), True, False),  # a proxy may answer it after passing it on
        (_server_error(429), True, True),
        (_server_error(500), True, False),
        (_server_error(502), True, False),
        (_dropped(sent=False), True, True),
        (_dropped(sent=True), True, False),
        (APITimeoutError("x", method="GET", url="u", request_sent=True), True, False),
        (BadRequestError("x"), False, False),
        (ConflictError("x"), False, False),
    ],
)
def test_what_may_be_retried(error: Any, idempotent: bool, unprocessed: bool) -> None:
    assert RetryPolicy.may_retry("idempotent", error) is idempotent
    assert RetryPolicy.may_retry("confirm", error) is idempotent
    assert RetryPolicy.may_retry("unprocessed", error) is unprocessed


# -- injected faults, both clients -----------------------------------------------------


async def _running_job(sdk: Sdk, client: Any, name: str = "r") -> Any:
    setup = sdk.client()
    ref = await sdk(setup.jobs.create({"name": name, "max_retries": 3}))
    job = await sdk(client.jobs.claim(ref.id))
    await sdk(job.ack())
    return job


async def test_503_429_and_dropped_connections_are_retried(sdk: Sdk, faults: Faults) -> None:
    client = sdk.client(transport=httpx.MockTransport(faults), max_retries=4)
    job = await _running_job(sdk, client)
    faults.plan("/progress", "503", "429", "refused", "drop")
    state = await sdk(job.progress(50, "halfway"))
    assert state.status == "running"
    assert faults.calls("/progress") == ["503", "429", "refused", "drop", "ok"]
    assert len(sdk.sleeps) == 4
    assert sdk.sleeps[1] == 0  # the 429 said Retry-After: 0
    assert (await sdk(job.get_progress())).progress.message == "halfway"
    await sdk.close(job)


async def test_retries_run_out_with_the_last_error(sdk: Sdk, faults: Faults) -> None:
    client = sdk.client(transport=httpx.MockTransport(faults), max_retries=2)
    job = await _running_job(sdk, client)
    faults.plan("/keepalive", "503", "503", "503")
    with pytest.raises(ServerError) as caught:
        await sdk(job.keepalive())
    assert caught.value.status == 503
    assert faults.calls("/keepalive") == ["503", "503", "503"]
    timeouts = sdk.client(transport=httpx.MockTransport(faults), max_retries=0)
    faults.plan("/keepalive", "timeout")
    with pytest.raises(APITimeoutError) as timed_out:
        await sdk(timeouts.jobs.keepalive(job.id))
    assert isinstance(timed_out.value.__cause__, httpx.ReadTimeout)
    await sdk.close(job)


@pytest.mark.parametrize("fault", ["drop", "timeout", "lost502"])
async def test_a_retried_complete_that_had_landed_reports_success(
    sdk: Sdk, faults: Faults, fault: str
) -> None:
    client = sdk.client(transport=httpx.MockTransport(faults))
    job = await _running_job(sdk, client)
    faults.plan("/complete", fault)  # the first attempt lands; its answer is lost
    state = await sdk(job.complete({"done": True}))
    assert (state.status, state.id) == ("completed", job.id)
    assert faults.calls("/complete") == [fault]  # the read-back shows it landed: not resent
    assert [m for m, p, _ in faults.seen if p.endswith(job.id)] == ["GET"]  # one read-back
    details = await sdk(job.get_details())
    assert [e.type for e in details.events].count("completed") == 1
    assert details.result == {"done": True}
    await sdk.close(job)


async def test_a_retried_fail_ack_and_kill_that_had_landed_report_success(
    sdk: Sdk, faults: Faults
) -> None:
    client = sdk.client(transport=httpx.MockTransport(faults))
    setup = sdk.client()
    ref = await sdk(setup.jobs.create({"name": "landed", "max_retries": 3}))
    job = await sdk(client.jobs.claim(ref.id))
    faults.plan("/ack", "drop")
    assert (await sdk(job.ack())).status == "running"
    faults.plan("/fail", "drop")
    state = await sdk(job.fail("boom"))
    assert (state.status, state.attempt_number) in {("pending", 1), ("delivered", 1)}
    again = await sdk(client.jobs.claim(ref.id))
    faults.plan("/kill", "timeout")
    assert (await sdk(again.kill("stop"))).status == "killed"
    assert faults.calls("/ack") == ["drop"]
    assert faults.calls("/fail") == ["drop"]
    assert faults.calls("/kill") == ["timeout"]
    events = [e.type for e in (await sdk(setup.jobs.get(ref.id))).events]
    assert (events.count("running"), events.count("retried"), events.count("killed")) == (1, 1, 1)
    await sdk.close(job)
    await sdk.close(again)


async def test_a_fail_that_landed_is_confirmed_though_the_job_moved_on(
    sdk: Sdk, faults: Faults
) -> None:
    client = sdk.client(transport=httpx.MockTransport(faults))
    job = await _running_job(sdk, client)
    other = _other_worker(client)
    # The fail lands, its answer is lost; another worker takes the retry before we look.
    faults.plan("/fail", "lost502")
    faults.plan(f"/jobs/{job.id}", "ok", method="GET", before=lambda: other(job.id))
    state = await sdk(job.fail("first"))
    assert (state.status, state.attempt_number) == ("running", job.attempt_number + 1)
    details = await sdk(job.get_details())
    assert [e.type for e in details.events].count("retried") == 1  # one fail, not two
    assert faults.calls("/fail") == ["lost502"]
    await sdk.close(job)


async def test_a_retry_never_acts_on_the_jobs_next_attempt(sdk: Sdk, faults: Faults) -> None:
    """Our complete did not land, and the job has since been retried by another worker."""
    client = sdk.client(transport=httpx.MockTransport(faults))
    job = await _running_job(sdk, client)
    other = _other_worker(client, fail_first=True)
    faults.plan("/complete", "503", before=lambda: other(job.id))
    with pytest.raises(ServerError):
        await sdk(job.complete({"late": True}))
    details = await sdk(job.get_details())
    # Theirs, untouched:
    assert (details.status, details.attempt_number) == ("running", job.attempt_number + 1)
    assert details.result is None
    assert faults.calls("/complete") == ["503"]  # read back, not sent again
    await sdk.close(job)


def _other_worker(client: Any, *, fail_first: bool = False) -> Any:
    """Another worker taking the job's next attempt (after failing ours, if told)."""

    def take(job_id: str) -> None:
        with EmitClient(space_id=client.space_id, api_key="emit_test_admin_key",
                        base_url=client.base_url) as other:  # fmt: skip
            if fail_first:
                other.jobs.fail(job_id, "timed out, as the service would say")
            other.jobs.claim(job_id).ack()

    return take


async def test_a_conflict_on_retry_that_is_real_is_raised(sdk: Sdk, faults: Faults) -> None:
    """The first attempt did not land and the job was killed meanwhile: that is no success."""
    client = sdk.client(transport=httpx.MockTransport(faults))
    job = await _running_job(sdk, client)
    killer = EmitClient(space_id=client.space_id, api_key="emit_test_admin_key",
                        base_url=client.base_url)  # fmt: skip
    faults.plan("/complete", "503", before=lambda: killer.jobs.kill(job.id, "meanwhile"))
    with pytest.raises(JobKilledError):
        await sdk(job.complete({"late": True}))
    assert faults.calls("/complete") == ["503", "ok"]
    assert (await sdk(job.get_details())).result == {"reason": "meanwhile"}
    killer.close()
    await sdk.close(job)


async def test_a_first_attempt_conflict_is_not_confirmed(sdk: Sdk, faults: Faults) -> None:
    client = sdk.client(transport=httpx.MockTransport(faults))
    ref = await sdk(sdk.client().jobs.create({"name": "pending"}))
    with pytest.raises(ConflictError) as caught:
        await sdk(client.jobs.complete(ref.id))
    assert caught.value.code == "invalid_state"
    assert [m for m, p, _ in faults.seen] == ["POST"]  # no read-back, no retry


async def test_claim_is_retried_only_when_the_server_did_not_see_it(
    sdk: Sdk, faults: Faults
) -> None:
    client = sdk.client(transport=httpx.MockTransport(faults), max_retries=3)
    refs = await sdk(sdk.client().jobs.create([{"name": "c"}, {"name": "c"}, {"name": "c"}]))
    faults.plan("/claim", "refused", "429")
    job = await sdk(client.jobs.claim(refs[0].id))
    assert job.id == refs[0].id
    assert faults.calls("/claim") == ["refused", "429", "ok"]

    faults.plan("/claim", "drop")  # the claim landed; its answer was lost
    with pytest.raises(APIConnectionError) as dropped:
        await sdk(client.jobs.claim(refs[1].id))
    assert dropped.value.request_sent
    assert faults.calls("/claim")[3:] == ["drop"]  # the job was delivered: not sent again
    # A proxy may answer 502 or 503 after passing a claim on; the job tells it did not.
    faults.plan("/claim", "502", "503")
    again = await sdk(client.jobs.claim(refs[2].id))
    assert again.id == refs[2].id
    assert faults.calls("/claim")[4:] == ["502", "503", "ok"]
    read_backs = [m for m, p, _ in faults.seen if p.endswith(f"/jobs/{refs[2].id}")]
    assert read_backs == ["GET", "GET"]  # pending each time: nobody had claimed it
    assert (await sdk(client.jobs.get(refs[1].id))).status == "delivered"
    await sdk.close(job)
    await sdk.close(again)


async def test_create_and_poll_are_not_repeated_after_an_ambiguous_failure(
    sdk: Sdk, faults: Faults
) -> None:
    client = sdk.client(transport=httpx.MockTransport(faults))
    faults.plan("/jobs", "drop")
    with pytest.raises(APIConnectionError):
        await sdk(client.jobs.create({"name": "once"}))
    assert len(await sdk(client.jobs.list())) == 1  # created once, not twice
    faults.plan("/jobs/poll", "timeout")
    with pytest.raises(APITimeoutError):
        await sdk(client.jobs.poll(types="once"))
    faults.plan("/jobs", "429")
    await sdk(client.jobs.create({"name": "twice"}))
    assert sorted(j.name for j in await sdk(client.jobs.list())) == ["once", "twice"]
    assert faults.calls("/jobs/poll") == ["timeout"]


async def test_an_event_is_not_recorded_twice_after_a_lost_answer(sdk: Sdk, faults: Faults) -> None:
    client = sdk.client(transport=httpx.MockTransport(faults))
    job = await _running_job(sdk, client)
    faults.plan("/event", "drop")  # recorded; the answer was lost
    with pytest.raises(APIConnectionError) as caught:
        await sdk(job.event({"kind": "once"}))
    assert caught.value.request_sent
    faults.plan("/event", "429", "refused")  # provably not recorded: retried
    await sdk(job.event({"kind": "twice"}))
    assert faults.calls("/event") == ["drop", "429", "refused", "ok"]
    events = [e.data for e in (await sdk(job.get_details())).events if e.type == "event"]
    assert events == [{"kind": "once"}, {"kind": "twice"}]
    await sdk.close(job)
