"""ServerConfig: the DECIDED defaults, and settings that are refused at once."""

from __future__ import annotations

import pytest

from emit_push.server import ServerConfig


def test_decided_defaults() -> None:
    config = ServerConfig()
    assert tuple(config.callback_retry_delays) == (1.0, 5.0, 25.0)  # contract §7
    assert config.callback_timeout == 10.0  # §7
    assert config.push_timeout == 10.0  # §6
    assert config.max_payload_bytes == 1024 * 1024  # §4: 1 MiB per job payload
    assert config.max_request_bytes == 5 * 1024 * 1024  # 5 MiB per request
    assert config.max_bulk_jobs == 1000  # §5
    assert config.rate_limit is None  # enforced only when configured (§3)


def test_limits_retries_and_timeouts_of_the_hardened_server() -> None:
    """DECIDED (README, server section): the caps on worker texts, the re-push of a pending
    job whose push failed, and the read timeouts."""
    config = ServerConfig()
    assert config.max_text_bytes == 16 * 1024  # progress message, stage message, kill reason
    assert config.max_error_bytes == 64 * 1024  # fail error
    assert config.max_event_bytes == 64 * 1024  # checkpoint / event data, a progress record
    assert config.max_result_bytes == 1024 * 1024  # like a payload
    assert tuple(config.push_retry_delays) == (1, 2, 4, 8, 16, 32, 60, 60, 60, 60)
    assert (config.header_timeout, config.body_timeout) == (10.0, 30.0)
    assert config.resolver is None  # the system's getaddrinfo


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rate_limit": 0}, "rate_limit must be greater than 0"),
        ({"rate_limit": -5}, "rate_limit must be greater than 0"),
        ({"rate_limit": float("nan")}, "rate_limit must be greater than 0"),
        ({"rate_limit": float("inf")}, "rate_limit must be greater than 0"),
        ({"max_request_bytes": 0}, "max_request_bytes must be greater than 0"),
        ({"max_payload_bytes": -1}, "max_payload_bytes must be greater than 0"),
        ({"max_bulk_jobs": 1.5}, "max_bulk_jobs must be an integer"),
        ({"outbound_concurrency": 0}, "outbound_concurrency must be greater than 0"),
        ({"push_timeout": 0}, "push_timeout must be greater than 0"),
        ({"callback_timeout": "10"}, "callback_timeout must be a number"),
        ({"callback_retry_delays": (1, -1)}, "callback_retry_delays: -1 must be 0 or more"),
        ({"callback_retry_delays": ("1",)}, "callback_retry_delays: '1' is not a number"),
        ({"push_retry_delays": (1, float("inf"))}, "push_retry_delays: inf must be 0 or more"),
        ({"max_text_bytes": 0}, "max_text_bytes must be greater than 0"),
        ({"max_event_bytes": 1.5}, "max_event_bytes must be an integer"),
        ({"header_timeout": 0}, "header_timeout must be greater than 0"),
        ({"body_timeout": float("nan")}, "body_timeout must be greater than 0"),
    ],
)
def test_bad_settings_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        ServerConfig(**changes)  # type: ignore[arg-type]


def test_slow_and_instant_settings_are_fine() -> None:
    config = ServerConfig(rate_limit=0.5, callback_retry_delays=(0, 0.1), push_timeout=0.01)
    assert config.rate_limit == 0.5
