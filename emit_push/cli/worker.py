"""``emit-push worker APP``: the app's ``@on_job`` handlers as a polling worker.

It prints one line per finished job, and stops with the fix when the key is refused
(401, 403): polling again would only be refused again. Before the first poll it makes one
read (``jobs.list``) to tell a base URL without ``/api/v1`` at once: there every call is
404, and the poll loop would only warn of each failed poll.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
from typing import TYPE_CHECKING, Any

from .._exceptions import escape_surrogates
from .._framework.polling import MAX_COUNT
from .common import (
    CliError,
    UsageError,
    add_client_flags,
    client_settings,
    explained,
    load_app,
    not_found,
    show_job_lines,
)

if TYPE_CHECKING:
    from .._framework.app import EmitPush
    from .._framework.push import PushResult

__all__ = ["add_worker_parser", "run_worker"]


def add_worker_parser(sub: Any) -> None:
    worker = sub.add_parser(
        "worker",
        help="run your app's handlers as a polling worker",
        description=(
            "Run your app's @on_job handlers as a polling worker: one line per finished job,"
            " until Ctrl-C or SIGTERM (running jobs get --grace-period seconds). A refused"
            " key stops it with the fix (exit 1)."
        ),
    )
    worker.add_argument("app", metavar="APP", help="module:attr or path/to/file.py[:attr]")
    worker.add_argument(
        "--count", type=int, default=1, metavar="N", help="jobs run at once, 1-50 (default 1)"
    )
    worker.add_argument(
        "--types", nargs="*", metavar="NAME", help="job names to take (default: the app's)"
    )
    worker.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds after an empty poll, doubling up to --max-backoff (default 1)",
    )
    worker.add_argument(
        "--max-backoff",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="the longest wait between empty polls (default 15)",
    )
    worker.add_argument(
        "--grace-period",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="seconds running jobs get to finish once stopped (default 30)",
    )
    add_client_flags(worker)


def _check_flags(args: argparse.Namespace) -> None:
    if not 1 <= args.count <= MAX_COUNT:
        raise UsageError(f"--count must be between 1 and {MAX_COUNT}, got {args.count}")
    for flag, value in (
        ("--poll-interval", args.poll_interval),
        ("--max-backoff", args.max_backoff),
    ):
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"{flag} must be a number of seconds greater than 0, got {value}")
    if not (math.isfinite(args.grace_period) and args.grace_period >= 0):
        raise UsageError(
            f"--grace-period must be a number of seconds >= 0, got {args.grace_period}"
        )


def run_worker(args: argparse.Namespace) -> int:
    _check_flags(args)
    # The flags become the environment the app reads its settings from, at its import.
    for key, value in client_settings(args).items():
        if value:
            os.environ[f"EMIT_{key.upper()}"] = value
    with explained(args.base_url):  # import errors, missing settings, a refused key: one line
        app = load_app(args.app)
        show_job_lines()
        app.runner.prepare()
        names = _names(app, args.types)
        print(f"emit-push worker: {names} (Ctrl-C stops)", flush=True)
        asyncio.run(_work(app, args))
    print("emit-push worker stopped", flush=True)
    return 0


def _names(app: EmitPush, types: list[str] | None) -> str:
    """The job names the worker takes, as its banner says them."""
    from .._framework.app import ANY_NAME

    if not types:
        return "every job" if ANY_NAME in app.handlers else ", ".join(sorted(app.handlers))
    if ANY_NAME not in app.handlers and (unknown := sorted(set(types) - set(app.handlers))):
        # Such jobs would be claimed, then failed for want of a handler.
        raise UsageError(
            f"--types {unknown[0]}: the app has no handler for it"
            f" (it has: {', '.join(sorted(app.handlers))})"
        )
    return ", ".join(types)


async def _work(app: EmitPush, args: argparse.Namespace) -> None:
    """Poll until stopped; a refused key ends the loop with its error (``explained``)."""
    await _check_base_url(app)
    await app.run_polling(
        types=args.types or None,
        count=args.count,
        poll_interval=args.poll_interval,
        max_backoff=args.max_backoff,
        grace_period=args.grace_period,
        on_done=_report,
    )


async def _check_base_url(app: EmitPush) -> None:
    """``CliError`` with the fix when the app's base URL has no emit.run API (404).

    Any other failure is left to the poll loop: a refused key ends it with its error, an
    unreachable server is polled again until it answers.
    """
    from .._exceptions import EmitError, NotFoundError

    client = app.client()  # the app's own settings: its code may set base_url=
    try:
        await client.jobs.list(limit=1)
    except NotFoundError as exc:
        raise CliError(not_found(client.base_url, None, exc.code)) from None
    except EmitError:
        pass


def _report(result: PushResult) -> None:
    """One line per finished job, as ``dev`` says a run: ``name id #attempt outcome: why``
    (text UTF-8 cannot hold written out: never a crash)."""
    why = result.error or result.reason
    attempt = f" #{result.attempt_number}" if result.attempt_number is not None else ""
    line = f"  {result.name or '?'} {result.job_id}{attempt} {result.status}"
    print(escape_surrogates(line + (f": {why}" if why else "")), flush=True)
