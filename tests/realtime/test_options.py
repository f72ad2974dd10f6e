"""``StreamOptions``: a stream's options, checked at once, with the public methods' defaults."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from emit_push._exceptions import InvalidInputError
from emit_push._realtime.options import StreamOptions
from emit_push._realtime.streams import AsyncRealtime, Realtime


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"since": -1}, "since must be an integer >= 0"),
        ({"since": True}, "since must be an integer >= 0"),
        ({"since": "3"}, "since must be an integer >= 0"),
        ({"stream_instance_id": 3}, "stream_instance_id must be a string"),
        ({"reconnect_delay": 0}, "reconnect_delay must be a positive number"),
        ({"reconnect_delay": float("nan")}, "reconnect_delay must be a positive number"),
        ({"max_reconnect_delay": "1"}, "max_reconnect_delay must be a number"),
        ({"token": ""}, "token must be a non-empty string"),
        ({"token": "  "}, "token must be a non-empty string"),
        ({"token": 3}, "token must be a non-empty string"),
        ({"token": "emit_k", "use_api_key": True}, "pass token= or use_api_key=True, not both"),
        ({"connect": "wss://proxy"}, "connect must be callable"),
    ],
)
def test_invalid_options_are_refused_at_once(options: dict[str, Any], error: str) -> None:
    with pytest.raises(InvalidInputError, match=error):
        StreamOptions(**options)


CALLBACKS = ["on_open", "on_event", "on_error", "on_close"]
RECONNECT = ["auto_reconnect", "reconnect_delay", "max_reconnect_delay", "connect"]
JOB_OPTIONS = ["token", "use_api_key", *RECONNECT]
SPACE_OPTIONS = ["since", "stream_instance_id", "token", *RECONNECT]


@pytest.mark.parametrize("api", [Realtime, AsyncRealtime])
@pytest.mark.parametrize(
    ("method", "parameters"),
    [
        ("connect_job", ["job_id", *JOB_OPTIONS, *CALLBACKS, "stop"]),
        ("connect_space", ["space_id", *SPACE_OPTIONS, *CALLBACKS, "stop"]),
        ("job", ["job_id", *JOB_OPTIONS, "stop"]),
        ("space", ["space_id", *SPACE_OPTIONS, "stop"]),
    ],
)
def test_the_public_methods_spell_out_the_options_with_their_defaults(
    api: type[Any], method: str, parameters: list[str]
) -> None:
    signature = inspect.signature(getattr(api, method))
    assert list(signature.parameters) == ["self", *parameters]
    target, *keywords = [signature.parameters[name] for name in parameters]
    assert target.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert target.default is (None if target.name == "space_id" else inspect.Parameter.empty)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in keywords)
    defaults = {f.name: f.default for f in dataclasses.fields(StreamOptions)}
    assert {p.name: p.default for p in keywords} == {p.name: defaults.get(p.name) for p in keywords}
    assert defaults["reconnect_delay"] == 1.0
    assert defaults["max_reconnect_delay"] == 15.0
