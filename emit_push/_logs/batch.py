"""A batch of log entries and its NDJSON body, built so that no entry can spoil it.

Entries hold whatever the user logged; they become text only here, in the shipper, off
the hot path. Every user value goes through a conversion that cannot raise: ``str()``,
then ``repr()``, then a placeholder naming the type; metadata that JSON cannot hold
(NaN, cycles, odd keys) is sent as ``{"repr": ...}``; text that UTF-8 cannot hold (lone
surrogates, e.g. a file name from ``os.fsdecode``) is sent with the offending code points
written as backslash escapes: ``photo-\\xff.jpg``. Sizes are capped too: a ``source``
at 255 characters (the service's limit), a message at 32,768 characters and metadata at
32,768 characters of JSON; what is cut is said in the entry. So one bad entry ships in a
safe form and the others ship as they are.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import escape_surrogates

__all__ = ["Batch", "Entry"]

Entry = tuple[float, str, Any, Any, "str | None"]  # ts, level, message, metadata, source

MAX_SOURCE = 255
MAX_MESSAGE = 32_768
MAX_METADATA = 32_768


@dataclass(slots=True)
class Batch:
    """Entries taken from the buffer for one request, and the drops to report with them.

    A batch is sent as one body, made once: when a send fails it is sent again (or
    looked for, see ``delivery``) byte for byte.
    """

    entries: list[Entry]
    dropped: int
    cap: int
    in_doubt: bool = False
    """Sent, but the answer was lost: it may be stored already."""
    half: bool = False
    """Part of a batch the service refused whole (see ``LogBuffer.settle``)."""
    _body: bytes | None = field(default=None, init=False, repr=False)

    @property
    def lines(self) -> int:
        """How many lines the body has: the entries, and the drop report if any."""
        return len(self.entries) + (1 if self.dropped else 0)

    def encode(self) -> bytes:
        """The batch as NDJSON, a drop report first when entries were dropped."""
        if self._body is None:
            lines = []
            if self.dropped:
                at = self.entries[0][0] if self.entries else time.time()
                message = (
                    f"emit-push dropped {self.dropped} log entries: "
                    f"more than {self.cap} were waiting to be sent"
                )
                report = {"droppedEntries": self.dropped}
                lines.append(_line(at, "warn", message, report, "emit-push"))
            lines.extend(_line(*entry) for entry in self.entries)
            text = "\n".join(lines) + "\n"
            try:
                self._body = text.encode()
            except UnicodeEncodeError:  # lone surrogates: only ever inside JSON strings
                self._body = _LONE_SURROGATE.sub(_escaped, text).encode()
        return self._body

    def decoded(self) -> list[dict[str, Any]]:
        """The lines as the service will read them (for checking what it stored)."""
        return [json.loads(line) for line in self.encode().splitlines()]


_encode_json = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, default=lambda value: _text(value), separators=(",", ":")
).encode
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_second: tuple[int, str] = (-1, "")  # the last second formatted, shared by its entries


def _escaped(match: re.Match[str]) -> str:
    # As `escape_surrogates` writes it, inside JSON text, where `\\` is one backslash: the
    # service stores the escape as plain text.
    point = ord(match.group())
    if 0xDC80 <= point <= 0xDCFF:  # a byte os.fsdecode could not decode: show the byte
        return f"\\\\x{point - 0xDC00:02x}"
    return f"\\\\u{point:04x}"


def _text(value: object) -> str:
    """``str(value)``, never raising."""
    try:
        return str(value)
    except Exception:
        return _repr(value)


def _repr(value: object) -> str:
    """``repr(value)``, never raising."""
    try:
        return repr(value)
    except Exception:
        return f"<unprintable {type(value).__name__} object>"


def _stamp(ts: float) -> str:
    global _second
    seconds, millis = divmod(int(ts * 1000), 1000)
    if _second[0] != seconds:
        _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{_second[1]}.{millis:03d}Z"


def _metadata(metadata: Any) -> str:
    try:
        if not isinstance(metadata, dict):
            metadata = dict(metadata) if isinstance(metadata, Mapping) else {"value": metadata}
        text = _encode_json(metadata)
    except Exception:  # odd keys, NaN, cycles, a mapping that fails to iterate...
        return _encode_json({"repr": _repr(metadata)[:2000]})
    if len(text) <= MAX_METADATA:
        return text
    return _encode_json({"truncated": len(text), "json": text[:2000]})


def _clamped(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = f" [... {len(text) - limit + 40:,} characters cut]"
    return text[: limit - 40] + cut


def _line(ts: float, level: str, message: Any, metadata: Any, source: str | None) -> str:
    # Built by hand: the stamp and level are ours; only user values go through the encoder.
    text = f'{{"ts":"{_stamp(ts)}","level":"{level}","message":'
    try:
        message = message if type(message) is str else _text(message)
        text += _encode_json(_clamped(message, MAX_MESSAGE))
        if source is not None:
            source = source if type(source) is str else _text(source)
            if len(source) > MAX_SOURCE // 6:  # written out, an escape takes up to 6
                source = escape_surrogates(source)[:MAX_SOURCE]
            text += ',"source":' + _encode_json(source)
        if metadata is not None:
            text += ',"metadata":' + _metadata(metadata)
    except Exception:  # not expected (every value went through a safe path): the line still goes
        fallback = f'{{"ts":"{_stamp(ts)}","level":"{level}","message":'
        return fallback + _encode_json(f"<unencodable log entry: {_repr(message)[:2000]}>") + "}"
    return text + "}"
