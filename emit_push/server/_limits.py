"""Caps on what workers write into a job: texts, event data and results (413, naming both
the size and the limit: ``progress message is 4194304 bytes; the limit is 16384``).

Everything a worker sends is kept in the job's row and its history, read back by every
``GET /jobs/:id`` and sent to every stream: without caps one client could make each of
those reads megabytes long. Sizes are UTF-8 bytes of a text, or of the compact JSON the
server stores for data.
"""

from __future__ import annotations

from typing import Any

from ._config import ServerConfig
from ._errors import ApiError
from ._wire import dumps

__all__ = ["check_worker_body", "over_limit"]


def over_limit(what: str, size: int, limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"{what} is {size} bytes; the limit is {limit}")


def _text(what: str, text: str | None, limit: int) -> None:
    if text is None or len(text) * 4 <= limit:  # at most 4 bytes a character: fits
        return
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise over_limit(what, size, limit)


def _data(what: str, value: Any, limit: int) -> None:
    text = dumps(value)
    if len(text) * 4 > limit and (size := len(text.encode())) > limit:
        raise over_limit(what, size, limit)


def check_worker_body(action: str, arg: Any, config: ServerConfig) -> None:
    """413 when the validated body of worker call ``action`` is over a limit of ``config``."""
    if action == "progress":
        _text("progress message", arg["message"], config.max_text_bytes)
        for name, stage in (arg["subProgress"] or {}).items():
            _text(f"subProgress.{name[:40]}.message", stage.get("message"), config.max_text_bytes)
        _data("progress", arg, config.max_event_bytes)
    elif action in {"checkpoint", "event"}:
        _data(f"{action} data", arg, config.max_event_bytes)
    elif action == "fail":
        _text("fail error", arg, config.max_error_bytes)
    elif action == "kill":
        _text("kill reason", arg, config.max_text_bytes)
    elif action == "complete":
        _data("result", arg, config.max_result_bytes)
