"""Reading requests safely: capped bodies, strict JSON, gzip with a ceiling, query numbers."""

from __future__ import annotations

import json
import math
import re
import zlib
from typing import Any

from starlette.requests import Request

from ._errors import ApiError, bad_request

__all__ = ["int_param", "parse_json", "read_body"]

_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def too_large(limit: int, what: str = "request body") -> ApiError:
    return ApiError(413, "payload_too_large", f"{what} exceeds the limit of {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def parse_json(body: bytes, what: str = "body") -> Any:
    """Parse strict JSON (finite numbers, valid UTF-8, no lone surrogates)."""
    try:
        value = json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
        if _SURROGATE.search(body):
            json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise bad_request(f"{what} contains an unpaired UTF-16 surrogate") from None
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise bad_request(f"{what} is not valid JSON: {reason}") from None
    return value


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress gzip, refusing (413) output beyond ``limit`` bytes: no zip bombs."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(body, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise too_large(limit, "decompressed body")
        out += inflater.flush()
    except zlib.error as exc:
        raise bad_request(f"body is not valid gzip: {exc}") from None
    if not inflater.eof:
        raise bad_request("body is not valid gzip: truncated stream")
    return out


def int_param(
    request: Request,
    name: str,
    default: int | None,
    *,
    minimum: int = 0,
    clamp: int | None = None,
) -> int | None:
    """An integer query parameter: 400 when malformed or below ``minimum``; clamped above."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"-?\d{1,18}", raw):
        raise bad_request(f"{name}: must be an integer")
    value = int(raw)
    if value < minimum:
        raise bad_request(f"{name}: must be at least {minimum}")
    return value if clamp is None else min(value, clamp)
