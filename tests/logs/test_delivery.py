"""Log batches whose answer was lost: read back, never stored twice, never lost.

First the delivery flow by hand (no I/O), then faults injected between the job logger
and the live server: every line exactly once, in order.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from emit_push import (
    APIConnectionError,
    LoggerOptions,
    LogPage,
    LogsAccepted,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from emit_push._logs.batch import Batch
from emit_push._logs.delivery import LogCursor, deliver
from tests.sdk.conftest import Faults, Sdk
from tests.waiting import eventually

# -- the flow, by hand -----------------------------------------------------------------


def _batch(*messages: str) -> Batch:
    return Batch(
        [(1_700_000_000.0 + n, "info", m, None, None) for n, m in enumerate(messages)], 0, 100
    )


def _stored(seq: int, message: str, ts: str | None = None) -> dict[str, Any]:
    return {"seq": seq, "level": "info", "message": message, "ts": ts}


def _run(flow: Any, answers: list[Any]) -> tuple[Any, list[Any]]:
    """Answer each call of ``flow`` in turn: a value, or an exception to throw in."""
    calls: list[Any] = []
    answer: Any = None
    throw: BaseException | None = None
    while True:
        try:
            call = flow.send(answer) if throw is None else flow.throw(throw)
        except StopIteration as stop:
            return stop.value, calls
        calls.append((call.method, dict(call.params or {})))
        answer, throw = None, None
        reply = answers.pop(0)
        if isinstance(reply, BaseException):
            throw = reply
        else:
            answer = reply


def _lost() -> APIConnectionError:
    return APIConnectionError("dropped", method="POST", url="u", request_sent=True)


def test_a_lost_answer_whose_batch_is_stored_counts_as_sent() -> None:
    cursor = LogCursor()
    cursor.last_seq = 7
    page = LogPage.model_validate({"logs": [_stored(8, "a"), _stored(9, "b")]})
    result, calls = _run(deliver("j", _batch("a", "b"), cursor, gzip=False), [_lost(), page])
    assert calls == [("POST", {}), ("GET", {"after": 7, "limit": 2})]
    assert (result.accepted, result.last_seq, cursor.last_seq) == (2, 9, 9)


def test_a_lost_answer_whose_batch_is_not_there_is_sent_again() -> None:
    cursor = LogCursor()
    cursor.last_seq = 7
    someone_elses = LogPage.model_validate({"logs": [_stored(8, "x"), _stored(9, "b")]})
    accepted = LogsAccepted(accepted=2, first_seq=10, last_seq=11)
    result, calls = _run(
        deliver("j", _batch("a", "b"), cursor, gzip=False),
        [ServerError("bad gateway", status=502), someone_elses, accepted],
    )
    assert [method for method, _ in calls] == ["POST", "GET", "POST"]
    assert (result, cursor.last_seq) == (accepted, 11)


def test_without_a_cursor_the_timestamps_must_match_too() -> None:
    batch = _batch("starting")
    stamp = batch.decoded()[0]["ts"]
    earlier_attempt = _stored(1, "starting", "2020-01-01T00:00:00.000Z")
    this_batch = _stored(2, "starting", stamp)
    pages = [
        LogPage.model_validate({"logs": [earlier_attempt], "nextCursor": 1}),
        LogPage.model_validate({"logs": [this_batch]}),
    ]
    cursor = LogCursor()
    result, calls = _run(deliver("j", batch, cursor, gzip=False), [_lost(), *pages])
    assert calls[1:] == [("GET", {"limit": 1000}), ("GET", {"after": 1, "limit": 1000})]
    assert (result.last_seq, cursor.last_seq) == (2, 2)
    only_the_earlier = LogPage.model_validate({"logs": [earlier_attempt]})
    again = LogsAccepted(accepted=1, first_seq=2, last_seq=2)
    result, calls = _run(
        deliver("j", _batch("starting"), LogCursor(), gzip=False),
        [_lost(), only_the_earlier, again],
    )
    assert [method for method, _ in calls] == ["POST", "GET", "POST"]  # not mistaken for it


def test_when_the_read_back_fails_the_batch_stays_in_doubt() -> None:
    batch = _batch("a")
    cursor = LogCursor()
    cursor.last_seq = 3
    with pytest.raises(APIConnectionError):
        _run(deliver("j", batch, cursor, gzip=False), [_lost(), ServerError("down", status=503)])
    assert batch.in_doubt
    page = LogPage.model_validate({"logs": [_stored(4, "a")]})
    result, calls = _run(deliver("j", batch, cursor, gzip=False), [page])  # the next try
    assert calls == [("GET", {"after": 3, "limit": 1})]  # looked for first: not sent twice
    assert result.last_seq == 4


def test_a_key_that_may_not_read_the_logs_sends_the_batch_again() -> None:
    """Without jobs:read there is no telling: a line stored twice beats a line lost."""
    accepted = LogsAccepted(accepted=1, first_seq=1, last_seq=1)
    refused = PermissionDeniedError("Missing required scope: jobs:read", status=403)
    result, calls = _run(
        deliver("j", _batch("a"), LogCursor(), gzip=False), [_lost(), refused, accepted]
    )
    assert [method for method, _ in calls] == ["POST", "GET", "POST"]
    assert result == accepted


def test_a_refused_batch_is_not_looked_for() -> None:
    with pytest.raises(RateLimitError):
        _run(deliver("j", _batch("a"), LogCursor(), gzip=False), [RateLimitError("x", status=429)])


# -- the live server, faults injected ----------------------------------------------------


async def _logged_job(sdk: Sdk, faults: Faults, **options: Any) -> Any:
    client = sdk.client(transport=httpx.MockTransport(faults))
    ref = await sdk(sdk.client().jobs.create({"name": "chatty"}))
    return await sdk(client.jobs.claim(ref.id, logger=LoggerOptions(**options)))


async def _stored_messages(sdk: Sdk, job: Any) -> list[str]:
    page = await sdk(job.get_logs(limit=1000))
    return [entry.message for entry in page.logs]


@pytest.mark.parametrize("fault", ["drop", "timeout", "lost502"])
async def test_lost_answers_store_each_line_exactly_once(
    sdk: Sdk, faults: Faults, fault: str
) -> None:
    job = await _logged_job(sdk, faults, flush_interval=60)
    # The first batch (no cursor yet) and the third (after an acknowledged one) land,
    # and their answers are lost.
    faults.plan("/logs", fault, "ok", fault, method="POST")
    for n in range(250):
        job.log.info(f"line {n}")
    await sdk.close(job)
    assert faults.calls("/logs", "POST") == [fault, "ok", fault]  # none sent twice
    assert faults.calls("/logs", "GET") == ["ok", "ok"]  # one read-back each
    assert await _stored_messages(sdk, job) == [f"line {n}" for n in range(250)]
    assert (job.log.sent, job.log.lost) == (250, 0)


async def test_a_batch_that_did_not_land_is_sent_again(sdk: Sdk, faults: Faults) -> None:
    job = await _logged_job(sdk, faults, flush_interval=60)
    faults.plan("/logs", "502", method="POST")  # a gateway error before the service saw it
    for n in range(150):
        job.log.info(f"line {n}")
    await sdk.close(job)
    assert await _stored_messages(sdk, job) == [f"line {n}" for n in range(150)]
    assert faults.calls("/logs", "POST") == ["502", "ok", "ok"]
    assert (job.log.sent, job.log.lost) == (150, 0)


async def test_a_batch_in_doubt_is_looked_for_again_before_it_is_resent(
    sdk: Sdk, faults: Faults
) -> None:
    job = await _logged_job(sdk, faults, flush_interval=0.02)
    faults.plan("/logs", "drop", method="POST")  # landed, answer lost...
    faults.plan("/logs", "refused", "refused", "refused", method="GET")  # ...and no read-back
    for n in range(20):
        job.log.info(f"line {n}")
    # The shipper tries again later, by itself: close() would look again too.
    await eventually(lambda: job.log.sent >= 20, message="the shipper to settle its 20 lines")
    await sdk.close(job)
    assert faults.calls("/logs", "POST") == ["drop"]  # found on the second look: not resent
    assert faults.calls("/logs", "GET") == ["refused", "refused", "refused", "ok"]
    assert await _stored_messages(sdk, job) == [f"line {n}" for n in range(20)]
    assert (job.log.sent, job.log.lost) == (20, 0)
