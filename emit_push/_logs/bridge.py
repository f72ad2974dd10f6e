"""The two-way bridge between a job's logs and the standard ``logging`` module.

**Out (echo).** Each ``job.log.*`` line is also a record of the ``emit_push.job`` logger,
with the job's id, name and attempt in ``extra`` (``emit_job_id``, ``emit_job_name``,
``emit_job_attempt``), so a job's story reaches the process's own stream (CloudWatch,
Cloud Logging, a terminal) through whatever handlers the program has. That logger is set
to INFO when nobody set its level, so the lines pass a root logger left at WARNING.

**In (capture).** A record made by any other logger while a job's function runs (its
task, or its thread: the job is a context variable) is appended to that job's logs, its
level mapped and the logger's name as ``source``. Records are caught as they are made,
through the record factory, not by a handler on the root logger: that would change the
program's own logging (``basicConfig`` does nothing once the root has a handler, and
``logging.lastResort`` stops printing warnings). So capture sees what the program's
logging levels let be made; with nothing configured, WARNING and above.

No loops: records of the ``emit_push`` loggers (the echo included) are never captured.
Outside a job the capture costs one context-variable read per record.
"""

from __future__ import annotations

import logging
import os
import traceback
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable

    from .logger import JobLogger

__all__ = ["ECHO_LOGGER", "Capture", "current", "echo", "install_capture", "level_name"]

ECHO_LOGGER = "emit_push.job"
_OWN = "emit_push"
_MAX_TRACEBACK = 8000

# Job log levels by stdlib level, and back.
_LEVELS = {"trace": 5, "debug": 10, "info": 20, "warn": 30, "error": 40, "fatal": 50}


class Capture(NamedTuple):
    """What the context variable holds while a job's function runs."""

    job: Any
    """The job the function was given (``emit_push.current_job()`` returns it)."""
    log: JobLogger
    level: int | None
    """Records below this stdlib level are not captured; None: capture is off."""


current: ContextVar[Capture | None] = ContextVar("emit_push_current_job", default=None)


def level_name(levelno: int) -> str:
    """The job log level for a stdlib level."""
    if levelno >= 50:
        return "fatal"
    if levelno >= 40:
        return "error"
    if levelno >= 30:
        return "warn"
    if levelno >= 20:
        return "info"
    return "debug" if levelno >= 10 else "trace"


def echo(
    job_id: str, name: str, attempt: int, level: int | None
) -> Callable[[str, str, Any], None] | None:
    """The function that repeats a job's lines on ``emit_push.job``, or None (off)."""
    if level is None:
        return None
    logger = logging.getLogger(ECHO_LOGGER)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    extra = {"emit_job_id": job_id, "emit_job_name": name, "emit_job_attempt": attempt}
    prefix = f"[{name} {job_id} #{attempt}] "

    def repeat(job_level: str, message: str, metadata: Any) -> None:
        levelno = _LEVELS.get(job_level, 20)
        if levelno < level or not logger.isEnabledFor(levelno):
            return
        if levelno < _last_resort_level() and not logger.hasHandlers():
            return  # nobody would see it: no record to make
        record_extra = extra if metadata is None else {**extra, "emit_metadata": metadata}
        # Made directly: the caller's frame would be this module's, not worth looking up.
        record = logger.makeRecord(
            ECHO_LOGGER, levelno, "(job.log)", 0, "%s%s", (prefix, message), None,
            extra=record_extra,
        )  # fmt: skip
        logger.handle(record)

    return repeat


def _last_resort_level() -> int:
    last = logging.lastResort
    return last.level if last is not None else logging.CRITICAL + 1


_installed = False


def install_capture() -> None:
    """Chain the capture into the record factory, once per process."""
    global _installed
    if _installed:
        return
    _installed = True
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        target = current.get()
        if target is not None and target.level is not None and record.levelno >= target.level:
            name = record.name
            if not (name == _OWN or name.startswith("emit_push.")):
                _append(target.log, record)
        return record

    logging.setLogRecordFactory(factory)


def _append(log: JobLogger, record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: the logging call's own problem, told there
        message = str(record.msg)
    if record.exc_info and record.exc_info[1] is not None:
        message += "\n" + bounded_traceback(record.exc_info[1])
    log._add(level_name(record.levelno), message, None, record.name, echo=False)


def bounded_traceback(exc: BaseException) -> str:
    """``exc``'s traceback as text, from the first frame that is not emit-push's own (the
    run, the middleware: the reader's code starts after them), its end kept when it is
    too long to ship whole."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None and _ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()
    if len(text) > _MAX_TRACEBACK:
        text = "...\n" + text[-_MAX_TRACEBACK:]
    return text


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _ours(filename: str) -> bool:
    return filename.startswith(_PACKAGE)
