"""Timestamps on the wire: four-digit years, milliseconds, UTC."""

from __future__ import annotations

import pytest

from emit_push.server._ids import MAX_TS_MS, TimestampRangeError, format_ts, parse_ts


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2025-02-24T10:30:00.000Z", 1_740_393_000_000),
        ("2025-02-24T11:30:00.123+01:00", 1_740_393_000_123),
        ("2025-02-24T10:30:00", 1_740_393_000_000),  # no offset: UTC
        ("2025-02-24T10:30:00.9999Z", 1_740_393_000_999),  # truncated, never rounded up
        ("9999-12-31T23:59:59.999999Z", MAX_TS_MS),
    ],
)
def test_parse_and_format(text: str, ms: int) -> None:
    assert parse_ts(text) == ms
    assert parse_ts(format_ts(ms)) == ms


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00Z",
        "1969-12-31T23:59:59.999Z",
        "1970-01-01T00:30:00+01:00",  # 1969 in UTC
        "9999-12-31T23:59:59-05:00",  # year 10000 in UTC
    ],
)
def test_instants_outside_four_digit_years_are_refused(text: str) -> None:
    with pytest.raises(TimestampRangeError):
        parse_ts(text)


def test_years_are_always_four_digits() -> None:
    assert format_ts(0) == "1970-01-01T00:00:00.000Z"
    assert format_ts(MAX_TS_MS) == "9999-12-31T23:59:59.999Z"
    assert format_ts(-62_135_596_800_000) == "0001-01-01T00:00:00.000Z"  # older data
