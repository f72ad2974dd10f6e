"""``emit-push jobs ...``: create, read, follow and kill jobs from the shell.

For scripts, ``--json``: standard output is one JSON document and nothing else (the job
as the API returns it, or a list); progress and log lines are left out, and notes and
errors stay one line of text on standard error.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .common import (
    EXIT_FAILURE,
    UsageError,
    add_client_flags,
    client_settings,
    continued,
    explained,
)
from .following import say, stream
from .notes import PUSH_EVENTS, Attempts, PushNotes, catch_up

__all__ = ["add_jobs_parser", "run_jobs"]

TERMINAL = {"completed", "dead", "killed"}


def add_jobs_parser(sub: Any) -> None:
    jobs = sub.add_parser(
        "jobs",
        help="create, read, follow and kill jobs",
        description=(
            "Create, read, follow and kill jobs through the API (EMIT_BASE_URL). With --json"
            " each command prints one JSON document on standard output and nothing else."
        ),
    )
    commands = jobs.add_subparsers(
        dest="jobs_command", required=True, metavar="ACTION", help="what to do"
    )

    create = commands.add_parser(
        "create",
        help="create a job",
        description=(
            "Create a job and print its id. With --wait, follow it until it ends: exit 0 when"
            " it completed, 1 when it ended dead or killed."
        ),
    )
    create.add_argument("name", metavar="NAME", help="the job's name (its type), e.g. send-email")
    create.add_argument(
        "--payload", metavar="JSON", help="JSON, or @file (@- reads standard input)"
    )
    create.add_argument(
        "--max-retries",
        type=int,
        metavar="N",
        help="retries after a failed attempt (the API's default: 3)",
    )
    create.add_argument(
        "--timeout",
        type=int,
        dest="timeout_seconds",
        metavar="SECONDS",
        help=(
            "seconds of silence after which an attempt is given up (the API's default:"
            " 300); progress, checkpoints and keepalives restart it, and emit-push sends"
            " keepalives while the function runs"
        ),
    )
    create.add_argument("--scheduled-for", metavar="TIME", help="ISO-8601 time to start it at")
    create.add_argument(
        "--callback-url", metavar="URL", help="a URL the API calls when the job ends"
    )
    create.add_argument("--wait", action="store_true", help="follow it until it ends")
    output = create.add_mutually_exclusive_group()
    output.add_argument("--quiet", "-q", action="store_true", help="print only the id")
    _add_json_flag(output, "the job created (with --wait: the job as it ended)")

    get = commands.add_parser(
        "get", help="show a job with its events", description="Show a job with its events, as JSON."
    )
    get.add_argument("job_id", metavar="JOB_ID", help="the job's id")
    _add_json_flag(get, "the job (the same as without --json)")

    listing = commands.add_parser(
        "list", help="list jobs, newest first", description="List the space's jobs, newest first."
    )
    listing.add_argument(
        "--status", help="only jobs in this status (pending, running, completed, ...)"
    )
    listing.add_argument("--limit", type=int, default=20, metavar="N", help="how many (default 20)")
    listing.add_argument(
        "--offset", type=int, default=0, metavar="N", help="how many to skip (default 0)"
    )
    _add_json_flag(listing, "a list of the jobs")

    logs = commands.add_parser(
        "logs", help="print a job's logs", description="Print a job's log lines, oldest first."
    )
    logs.add_argument("job_id", metavar="JOB_ID", help="the job's id")
    logs.add_argument("--level", help="the minimum level (debug, info, warn, error, fatal)")
    logs.add_argument("--q", metavar="TEXT", help="only lines containing this (case-insensitive)")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing until it ends")
    _add_json_flag(logs, "a list of the log lines (with --follow: once the job has ended)")

    kill = commands.add_parser(
        "kill", help="kill a job", description="Kill a job: it stops at its next call to the API."
    )
    kill.add_argument("job_id", metavar="JOB_ID", help="the job's id")
    kill.add_argument("--reason", metavar="TEXT", help="why, kept as the job's result")
    _add_json_flag(kill, "the job's new state")

    for parser in (create, get, listing, logs, kill):
        add_client_flags(parser)


def _add_json_flag(parser: Any, what: str) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help=f"print one JSON document on standard output: {what}",
    )


def run_jobs(args: argparse.Namespace) -> int:
    from .._client import EmitClient

    # A bad flag value is told before missing settings, and before any call.
    payload = _payload(args.payload) if args.jobs_command == "create" else None
    with (
        explained(args.base_url, getattr(args, "job_id", None)),
        EmitClient(**client_settings(args)) as client,
    ):
        command = args.jobs_command
        if command == "create":
            return _create(client, args, payload)
        if command == "get":
            return _print_json(client.jobs.get(args.job_id))
        if command == "list":
            return _list(client, args)
        if command == "logs":
            return _logs(client, args)
        state = client.jobs.kill(args.job_id, args.reason)
        if args.json:
            return _print_json(state)
        print(f"killed {state.id}")
        return 0


def _payload(text: str | None) -> Any:
    if text is None:
        return None
    if text.startswith("@"):
        source = text[1:]
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text()
        except OSError as exc:
            raise UsageError(f"--payload {text}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--payload is not JSON: {exc}") from None


def _create(client: Any, args: argparse.Namespace, payload: Any) -> int:
    spec: dict[str, Any] = {"name": args.name, "payload": payload}
    for key in ("max_retries", "timeout_seconds", "scheduled_for", "callback_url"):
        if getattr(args, key) is not None:
            spec[key] = getattr(args, key)
    ref = client.jobs.create(spec)
    if args.json and not args.wait:
        return _print_json(ref)
    if not args.json:
        print(ref.id if args.quiet else f"created {ref.id} ({args.name})", flush=True)
    if not args.wait:
        return 0
    job = _follow(client, ref.id, quiet=args.quiet or args.json)
    if args.json:
        _print_json(job)
    else:
        result = json.dumps(job.result, ensure_ascii=False)
        print(f"{job.status}: {result}" if not args.quiet else result)
    return 0 if job.status == "completed" else EXIT_FAILURE


def _follow(client: Any, job_id: str, *, quiet: bool = False, after: int | None = None) -> Any:
    """Print progress and logs as they come (realtime stream), until the job ends.

    ``quiet``: nothing but the notes on a waiting job: each failed push with its cause and
    fix (``PushNotes``), or, for a job still pending after ``PENDING_NOTICE`` seconds, that
    nothing has taken it. The stream rides out a server restart.
    """
    from .._client import AsyncEmitClient

    config = client.config
    printed = after
    status: str | None = None

    async def follow() -> None:
        nonlocal printed, status
        async with AsyncEmitClient(
            space_id=config.space_id, api_key=config.api_key, base_url=config.base_url
        ) as stream_client:
            pushes = PushNotes(lambda text: say(f"waiting: {text}"))
            attempts = Attempts(lambda text: print(f"  {text}", flush=True))
            notes = asyncio.create_task(pushes.unclaimed(lambda: status))
            opening = functools.partial(
                stream_client.realtime.connect_job, job_id, use_api_key=True
            )
            try:
                async with stream(opening, config.base_url) as events:
                    async for event in events:
                        status = event.status or status
                        if event.type in PUSH_EVENTS:
                            pushes.saw(event.type, event.data)
                            continue
                        if event.type == "init":  # what went by before we came
                            told = None if quiet else attempts
                            await catch_up(stream_client, job_id, event, pushes, told)
                        data = event.data
                        if event.type == "init" and isinstance(data, dict):
                            data = data.get("progress")  # where it stands (also after a restart)
                        progress = isinstance(data, dict) and event.type in {"init", "progress"}
                        if progress and not quiet:
                            print(f"  {data.get('percent')}% {data.get('message', '')}", flush=True)
                        if event.type in {"init", "logs"} and not quiet:
                            printed = await _print_logs(stream_client, job_id, printed)
                        if event.type == "retried" and not quiet:  # an attempt failed
                            attempts.saw(event)
                        if event.type in TERMINAL:
                            break
            finally:
                notes.cancel()
                await asyncio.gather(notes, return_exceptions=True)

    asyncio.run(follow())
    return client.jobs.get(job_id)


async def _print_logs(client: Any, job_id: str, after: int | None) -> int | None:
    """Print the job's log lines after ``after``; returns the last one printed."""
    while True:
        page = await client.jobs.logs(job_id, after=after, limit=1000)
        for entry in page.logs:
            head = f"  [{entry.level}] "
            print(head + continued(entry.message, len(head)), flush=True)
            after = entry.seq
        if page.next_cursor is None:
            return after


def _print_json(document: Any) -> int:
    """One JSON document on standard output: a wire model (or a list of them) with the
    fields the API sent (camelCase; none of the model's defaults added, unknown ones
    kept), indented as ``jobs get`` has always printed it."""
    print(json.dumps(_document(document), indent=2, ensure_ascii=False))
    return 0


def _document(value: Any) -> Any:
    if isinstance(value, list):
        return [_document(item) for item in value]
    return value.model_dump(mode="json", by_alias=True, exclude_unset=True)


def _list(client: Any, args: argparse.Namespace) -> int:
    jobs = client.jobs.list(status=args.status, limit=args.limit, offset=args.offset)
    if args.json:
        return _print_json(jobs)
    if not jobs:
        print("no jobs")
        return 0
    print(f"{'id':<26}  {'name':<20} {'status':<10} {'attempt':>7}  created")
    for job in jobs:
        created = job.created_at.isoformat(timespec="seconds") if job.created_at else ""
        print(
            f"{job.id:<26}  {job.name[:20]:<20} {job.status:<10} {job.attempt_number:>7}  {created}"
        )
    return 0


def _logs(client: Any, args: argparse.Namespace) -> int:
    if args.json:  # the whole list at once: with --follow, once the job has ended
        if args.follow and client.jobs.get(args.job_id).status not in TERMINAL:
            _follow(client, args.job_id, quiet=True)
        return _print_json(list(_log_lines(client, args)))
    after: int | None = None
    for entry in _log_lines(client, args):
        when = entry.ts.isoformat(timespec="milliseconds") if entry.ts else ""
        source = f" {entry.source}" if entry.source else ""
        head = f"{when} {entry.level:<5}{source} "
        print(head + continued(entry.message, len(head)))
        after = entry.seq
    if args.follow and client.jobs.get(args.job_id).status not in TERMINAL:
        _follow(client, args.job_id, after=after)
    return 0


def _log_lines(client: Any, args: argparse.Namespace) -> Iterator[Any]:
    """The job's log lines (``LogEntry``), every page, as ``--level`` and ``--q`` filter."""
    after: int | None = None
    while True:
        page = client.jobs.logs(args.job_id, after=after, level=args.level, q=args.q, limit=1000)
        yield from page.logs
        if page.next_cursor is None:
            return
        after = page.next_cursor
