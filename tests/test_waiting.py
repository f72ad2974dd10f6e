"""The wait helpers: the value they wait for, and a failure that says what was awaited."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.waiting import eventually, wait_for


def test_wait_for_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert wait_for(lambda: max(next(counter) - 2, 0)) == 1


def test_wait_for_fails_naming_what_it_waited_for_and_the_last_value() -> None:
    with pytest.raises(AssertionError) as raised:
        wait_for(list, timeout=0.05, message="a request")
    assert str(raised.value) == "waited 0.05 s for a request; the last check gave []"
    # Without a message, the line that holds the condition says what it was.
    with pytest.raises(AssertionError, match=r"for wait_for\(lambda: 0, timeout=0\); .* gave 0$"):
        wait_for(lambda: 0, timeout=0)


def test_wait_for_lets_the_conditions_errors_through() -> None:
    with pytest.raises(ZeroDivisionError):
        wait_for(lambda: 1 / 0)


async def test_eventually_lets_the_event_loop_run_meanwhile() -> None:
    done: list[str] = []
    asyncio.get_running_loop().call_soon(done.append, "ran")
    assert await eventually(lambda: done) == ["ran"]
    with pytest.raises(
        AssertionError, match=r"^waited 0.05 s for nothing; the last check gave None$"
    ):
        await eventually(lambda: None, timeout=0.05, message="nothing")


async def test_eventually_awaits_an_async_condition() -> None:
    looks: list[int] = []

    async def third_look() -> int:
        await asyncio.sleep(0)
        looks.append(len(looks) + 1)
        return looks[-1] if len(looks) == 3 else 0

    assert await eventually(third_look) == 3
    with pytest.raises(AssertionError, match=r"for third_look\(\).*gave 0$"):
        await eventually(third_look, timeout=0, message="third_look()")
