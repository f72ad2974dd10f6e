"""Lambda HTTP events built from the recorded shapes in ``tests/events/``.

    event = function_url_event({"jobId": "01J..."}, {"authorization": "Bearer s3cret"})
    event = http_api_event(b"\\x00raw", base64_body=True)            # isBase64Encoded: true
    event = rest_api_event(push, {"Authorization": None})           # None drops a header
    assert event_body(event) == json.dumps(push, separators=(",", ":")).encode()

Each builder starts from the recorded event (a POST of a ``job.pending`` push with an
``authorization`` header), replaces the body and merges the headers the way that platform
does: Function URLs and HTTP APIs (payload 2.0) lowercase header names and join repeats
with commas; REST APIs (1.0) keep the client's spelling and fill ``multiValueHeaders``.
"""

from __future__ import annotations

import base64
import copy
import json
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"

Shape = Literal["lambda_function_url", "apigw_http_api_v2", "apigw_rest_api_v1"]
SHAPES: tuple[Shape, ...] = ("lambda_function_url", "apigw_http_api_v2", "apigw_rest_api_v1")

Body = bytes | str | Mapping[str, Any] | None
Headers = Mapping[str, str | None]


def load_event(shape: Shape) -> dict[str, Any]:
    """The recorded event, as stored."""
    event: dict[str, Any] = json.loads((EVENTS_DIR / f"{shape}.json").read_text())
    return event


def build_event(
    shape: Shape,
    body: Body = None,
    headers: Headers | None = None,
    *,
    base64_body: bool = False,
    path: str | None = None,
) -> dict[str, Any]:
    """The recorded ``shape`` with this body (default: the recorded push) and these headers
    merged over the recorded ones (a ``None`` value removes one). A body that is not UTF-8
    is base64-encoded, as the platforms do; ``base64_body`` forces it."""
    event = copy.deepcopy(load_event(shape))
    raw = _raw_body(event) if body is None else _encode(body)
    try:
        text = None if base64_body else raw.decode()
    except UnicodeDecodeError:  # binary: the platforms base64-encode it, and so do we
        text = None
    if text is None:
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    else:
        event["body"], event["isBase64Encoded"] = text, False
    context = event["requestContext"]
    now = time.time()
    context["requestId"] = str(uuid.uuid4())
    if shape == "apigw_rest_api_v1":
        _merge_v1_headers(event, headers or {})
        context["requestTimeEpoch"] = int(now * 1000)
        context["requestTime"] = _clf_time(now)
        if path is not None:
            event["path"] = event["resource"] = context["resourcePath"] = path
            context["path"] = f"/{context['stage']}{path}"
    else:
        _merge_v2_headers(event, headers or {}, len(raw))
        context["timeEpoch"] = int(now * 1000)
        context["time"] = _clf_time(now)
        if path is not None:
            event["rawPath"] = context["http"]["path"] = path
            if event["routeKey"] != "$default":
                event["routeKey"] = context["routeKey"] = f"POST {path}"
    return event


def function_url_event(
    body: Body = None, headers: Headers | None = None, **kw: Any
) -> dict[str, Any]:
    return build_event("lambda_function_url", body, headers, **kw)


def http_api_event(body: Body = None, headers: Headers | None = None, **kw: Any) -> dict[str, Any]:
    return build_event("apigw_http_api_v2", body, headers, **kw)


def rest_api_event(body: Body = None, headers: Headers | None = None, **kw: Any) -> dict[str, Any]:
    return build_event("apigw_rest_api_v1", body, headers, **kw)


def event_body(event: Mapping[str, Any]) -> bytes:
    """The request body as the client sent it (base64 undone)."""
    return _raw_body(event)


def event_headers(event: Mapping[str, Any]) -> dict[str, str]:
    """The request headers, names lowercased."""
    return {name.lower(): value for name, value in (event.get("headers") or {}).items()}


def _raw_body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()


def _encode(body: bytes | str | Mapping[str, Any]) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":")).encode()


def _merge_v2_headers(event: dict[str, Any], headers: Headers, length: int) -> None:
    merged: dict[str, str] = dict(event["headers"])
    merged["content-length"] = str(length)
    replaced: set[str] = set()
    for name, value in headers.items():
        key = name.lower()
        if value is None:
            merged.pop(key, None)
        elif key in replaced:  # the same header twice: one comma-joined value
            merged[key] = f"{merged[key]},{value}"
        else:
            merged[key] = value
            replaced.add(key)
    event["headers"] = merged


def _merge_v1_headers(event: dict[str, Any], headers: Headers) -> None:
    multi: dict[str, list[str]] = {k: list(v) for k, v in event["multiValueHeaders"].items()}
    replaced: set[str] = set()
    for name, value in headers.items():
        for existing in [k for k in multi if k.lower() == name.lower() and k not in replaced]:
            del multi[existing]
        if value is not None:
            multi.setdefault(name, []).append(value)
            replaced.add(name)
    event["multiValueHeaders"] = multi
    event["headers"] = {name: values[-1] for name, values in multi.items()}


def _clf_time(epoch: float) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch))
