"""Reading requests safely: capped bodies, strict JSON, gzip with a ceiling, query numbers,
a Host fit to be echoed."""

from __future__ import annotations

import json
import math
import re
import zlib
from array import array
from itertools import accumulate
from typing import Any

from starlette.requests import Request

from ._errors import ApiError, bad_request

__all__ = ["MAX_JSON_DEPTH", "gunzip", "host", "int_param", "parse_json", "read_body"]

MAX_JSON_DEPTH = 64
"""How deeply a JSON body (or log line) may nest arrays and objects.

Deeper values would be stored, then fail to render (RecursionError) in every later answer.
"""
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
DIGITS = re.compile(r"[0-9]{1,18}")  # ASCII only: str.isdigit() also accepts "²"
_INTEGER = re.compile(r"-?[0-9]{1,18}")
# bytes.translate: keep quotes and brackets only, brackets as +1 and -1 (0xff, signed).
_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
# host[:port]: a name of RFC 3986 unreserved characters, or a bracketed IPv6 literal.
_HOST = re.compile(
    r"(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+(?:%25[A-Za-z0-9._~-]+)?\])(?::[0-9]{1,5})?"
)
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_CHUNK = 16 * 1024  # input per inflate call: bounds the copy made at each member's end
_MAX_GZIP_MEMBERS = 10_000


def too_large(limit: int, what: str = "request body") -> ApiError:
    return ApiError(413, "payload_too_large", f"{what} exceeds the limit of {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if DIGITS.fullmatch(declared) and int(declared) > limit:
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
    """Parse strict JSON (finite numbers, valid UTF-8, no lone surrogates, bounded depth)."""
    try:
        value = json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
        if _SURROGATE.search(body):
            json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise bad_request(f"{what} contains an unpaired UTF-16 surrogate") from None
    except RecursionError:
        raise _too_deep(what) from None
    except ValueError as exc:
        raise bad_request(f"{what} is not valid JSON: {exc}") from None
    if nests_deeper(body, MAX_JSON_DEPTH):
        raise _too_deep(what)
    return value


def _too_deep(what: str) -> ApiError:
    return bad_request(f"{what}: JSON nests deeper than {MAX_JSON_DEPTH} levels")


def nests_deeper(text: bytes, limit: int) -> bool:
    """Whether valid JSON ``text`` nests arrays and objects more than ``limit`` levels deep.

    At C speed: text with at most ``limit`` opening brackets cannot (the usual case, two
    ``count`` calls). Otherwise escapes and strings are cut out, leaving the brackets, and
    the running sum of those (+1 opening, -1 closing) is taken with ``accumulate``.
    """
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    if b"\\" in text:  # escaped backslashes first, then escaped quotes: left to right, as JSON
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = text.translate(_SIGNS, _NOT_STRUCTURE)  # quotes, and brackets as +1/-1
    # A bracket is inside a string when an odd number of quotes precede it; dropping
    # adjacent quote pairs (most strings hold no bracket) keeps that parity for the rest.
    skeleton = skeleton.replace(b'""', b"")
    if b'"' in skeleton:
        skeleton = b"".join(skeleton.split(b'"')[::2])
    return max(accumulate(array("b", skeleton)), default=0) > limit


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress gzip, every member of it, refusing (413) output beyond ``limit`` bytes.

    Concatenated members are one valid gzip stream (``cat a.gz b.gz``); bytes after the
    last member that do not start another one are refused (400).
    """
    out: list[bytes] = []
    size, pos, members = 0, 0, 0
    data = memoryview(body)
    try:
        while pos < len(data) or members == 0:
            if data[pos : pos + 2] != _GZIP_MAGIC:
                where = "trailing bytes after the gzip data" if members else "no gzip header"
                raise bad_request(f"body is not valid gzip: {where}")
            members += 1
            if members > _MAX_GZIP_MEMBERS:
                raise bad_request(f"body: more than {_MAX_GZIP_MEMBERS} gzip members")
            inflater = zlib.decompressobj(wbits=31)
            while not inflater.eof:
                chunk = data[pos : pos + _GZIP_CHUNK]
                if not chunk:
                    raise bad_request("body is not valid gzip: truncated stream")
                piece = inflater.decompress(chunk, limit - size + 1)
                size += len(piece)
                if size > limit:  # (also when the output filled up: unconsumed_tail)
                    raise too_large(limit, "decompressed body")
                out.append(piece)
                pos += len(chunk) - len(inflater.unused_data)
    except zlib.error as exc:
        raise bad_request(f"body is not valid gzip: {exc}") from None
    return b"".join(out)


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
    if not _INTEGER.fullmatch(raw):
        raise bad_request(f"{name}: must be an integer")
    value = int(raw)
    if value < minimum:
        raise bad_request(f"{name}: must be at least {minimum}")
    return value if clamp is None else min(value, clamp)


def host(request: Request) -> str:
    """``host[:port]`` as the client reached us, for URLs in answers.

    The ``Host`` header when it is one; anything else (``a"b<script>``) would be echoed
    into those URLs, so then the server's own address is used.
    """
    header = request.headers.get("host", "")
    if _HOST.fullmatch(header):
        return header
    server = request.scope.get("server")
    if not server or server[1] is None:  # none, or a Unix socket: [path, None]
        return "localhost"
    name, port = server
    return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"
