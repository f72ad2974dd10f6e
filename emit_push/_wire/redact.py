"""Taking a secret (an API key, a realtime token) out of text before it is shown. No I/O.

Only whole occurrences are replaced, and only of a secret long enough to be one: a
substring rule would turn ``job_killed`` into ``job_[redacted]illed`` for a key ``k``, and
the kill would no longer be recognised. A JSON error body keeps its ``code`` as sent: a
code is the service's word, never a secret, and what the SDK acts on.

    redact("bad key emit_abc123 (GET /jobs)", "emit_abc123") == "bad key [redacted] (GET /jobs)"
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["MIN_SECRET_LENGTH", "REDACTED", "redact", "redact_body"]

MIN_SECRET_LENGTH = 8
"""Shorter values are not looked for: they would match ordinary words, not leak a key."""

REDACTED = "[redacted]"

# Characters a key or a token is made of: an occurrence next to one is part of a longer
# word (another key, an id), not the secret itself.
_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def redact(text: str, secret: str | None) -> str:
    """``text`` with each whole occurrence of ``secret`` (as is, or URL-encoded as in a
    query string) replaced by ``[redacted]``."""
    if not secret or len(secret) < MIN_SECRET_LENGTH:
        return text
    forms = {secret, quote_plus(secret), quote(secret), quote(secret, safe="")}
    for form in sorted(forms, key=len, reverse=True):
        text = _replace_whole(text, form)
    return text


def redact_body(content: bytes, secret: str) -> bytes:
    """An error answer's body without ``secret``: a JSON body is redacted value by value,
    its ``code`` fields left as sent; any other body as text."""
    if len(secret) < MIN_SECRET_LENGTH or secret.encode() not in content:
        return content
    text = content.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return redact(text, secret).encode()
    return json.dumps(_redact_json(data, secret), ensure_ascii=False).encode()


def _redact_json(value: Any, secret: str, key: str | None = None) -> Any:
    if isinstance(value, str):
        return value if key == "code" else redact(value, secret)
    if isinstance(value, dict):
        return {redact(k, secret): _redact_json(v, secret, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_json(item, secret) for item in value]
    return value


def _replace_whole(text: str, form: str) -> str:
    parts: list[str] = []
    start = 0
    while (found := text.find(form, start)) != -1:
        end = found + len(form)
        before = text[found - 1] if found else ""
        after = text[end] if end < len(text) else ""
        if before in _WORD or after in _WORD:
            parts.append(text[start : found + 1])  # part of a longer word: keep it
            start = found + 1
            continue
        parts.append(text[start:found])
        parts.append(REDACTED)
        start = end
    parts.append(text[start:])
    return "".join(parts)
