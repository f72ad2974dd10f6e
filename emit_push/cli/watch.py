"""``emit-push watch JOB_ID`` and ``emit-push watch --space``: live views of the streams.

A job: its status, a progress bar with one bar per sub-progress stage, its log lines as
they arrive, and why it waits (each failed push, or that nothing has taken it:
``notes``), until it ends (exit 0 when it completed, 1 otherwise). A space: the jobs per
status and the latest events, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
from collections import deque
from typing import TYPE_CHECKING, Any

from .common import (
    UsageError,
    add_client_flags,
    client_settings,
    continued,
    explained,
    first_line,
)
from .following import say, stream
from .notes import PUSH_EVENTS, Attempts, PushNotes, catch_up, push_failure

if TYPE_CHECKING:
    from .._realtime.events import RealtimeEvent

__all__ = ["add_watch_parser", "run_watch", "space_line"]

TERMINAL = {"completed", "dead", "killed"}


def add_watch_parser(sub: Any) -> None:
    watch = sub.add_parser(
        "watch",
        help="follow a job (or the whole space) live",
        description=(
            "Follow a job live (its status, progress bars and log lines) until it ends, then"
            " print its result as JSON: exit 0 when it completed, 1 otherwise. With --space,"
            " the jobs per status and the latest events, until Ctrl-C. Needs the server extra."
        ),
    )
    watch.add_argument("job_id", nargs="?", metavar="JOB_ID", help="the job to follow")
    watch.add_argument("--space", action="store_true", help="follow every job of the space")
    add_client_flags(watch)


def run_watch(args: argparse.Namespace) -> int:
    if bool(args.job_id) == bool(args.space):
        raise UsageError("name a job to watch, or pass --space (not both)")
    from rich.console import Console

    console = Console(highlight=False)
    with explained(args.base_url, args.job_id):
        try:
            return asyncio.run(_watch(args, console))
        except KeyboardInterrupt:  # how a space watch ends
            return 0 if args.space else 130


async def _watch(args: argparse.Namespace, console: Any) -> int:
    from .._client import AsyncEmitClient

    async with AsyncEmitClient(**client_settings(args)) as client:
        if args.space:
            await _space(client, console, args.base_url)
            return 0
        return await _job(client, console, args.job_id, args.base_url)


class _JobView:
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.name = ""
        self.status = "?"
        self.percent = 0.0
        self.message = ""
        self.stages: dict[str, float] = {}
        self.result: Any = None

    def render(self) -> Any:
        from rich.console import Group
        from rich.markup import escape
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        title = escape(self.name or self.job_id)
        table.add_row(f"[bold]{title}[/]", self.status, escape(self.message))
        table.add_row(
            "", ProgressBar(total=100, completed=self.percent, width=40), f"{self.percent:.0f}%"
        )
        for stage, percent in self.stages.items():
            table.add_row(
                f"  {escape(stage)}",
                ProgressBar(total=100, completed=percent, width=40),
                f"{percent:.0f}%",
            )
        return Group(table)


async def _job(client: Any, console: Any, job_id: str, base_url: str | None) -> int:
    from rich.live import Live
    from rich.markup import escape

    view = _JobView(job_id)
    printed: int | None = None
    live: Live | None = None  # shown from the first event: nothing to show before

    def note(text: str, colour: str = "yellow") -> None:  # above the view, like a log line
        if live is not None:
            live.console.print(f"[{colour}]{escape(text)}[/]", soft_wrap=True)

    pushes = PushNotes(note)
    attempts = Attempts(lambda text: note(text, "red"))
    waiting = asyncio.create_task(pushes.unclaimed(lambda: view.status))
    opening = functools.partial(client.realtime.connect_job, job_id, use_api_key=True)
    try:
        async with stream(opening, base_url) as events:
            async for event in events:
                if live is None:
                    live = Live(view.render(), console=console, refresh_per_second=10)
                    live.start()
                if event.type in PUSH_EVENTS:
                    pushes.saw(event.type, event.data)
                elif event.type == "init" and isinstance(event.data, dict):
                    view.name = str(event.data.get("name", ""))
                    progress = event.data.get("progress")
                    if isinstance(progress, dict):
                        _progress(view, progress)
                    view.result = event.data.get("result")
                    await catch_up(client, job_id, event, pushes, attempts)  # before we came
                    printed = await _print_logs(client, live, job_id, printed)
                elif event.type == "progress" and isinstance(event.data, dict):
                    _progress(view, event.data)
                elif event.type == "logs":
                    printed = await _print_logs(client, live, job_id, printed)
                elif event.type == "retried":  # an attempt failed: which, and why
                    attempts.saw(event)
                elif event.type in TERMINAL:
                    view.result = event.data
                    if event.type == "completed":
                        view.percent = 100.0
                view.status = event.status or view.status
                live.update(view.render())
    finally:
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        if live is not None:
            live.stop()
            if not console.is_terminal:  # piped, the view is drawn once, unended
                console.line()
    # JSON, as `jobs create --wait` prints it (and as a script reads it back).
    result = json.dumps(view.result, ensure_ascii=False, default=str)
    console.print(f"{view.status}: {result}", markup=False, soft_wrap=True)
    return 0 if view.status == "completed" else 1


async def _print_logs(client: Any, live: Any, job_id: str, after: int | None) -> int | None:
    """Print the job's log lines after ``after``; returns the last one printed."""
    from rich.markup import escape

    while True:
        page = await client.jobs.logs(job_id, after=after, limit=1000)
        for entry in page.logs:
            live.console.print(f"[dim]{entry.level:<5}[/] {escape(continued(entry.message, 6))}")
            after = entry.seq
        if page.next_cursor is None:
            return after


def _progress(view: _JobView, data: dict[str, Any]) -> None:
    view.percent = float(data.get("percent") or 0)
    view.message = str(data.get("message") or "")
    stages = data.get("subProgress")
    if isinstance(stages, dict):
        view.stages = {
            name: float(stage.get("percent") or 0)
            for name, stage in stages.items()
            if isinstance(stage, dict)
        }


def space_line(event: RealtimeEvent) -> str:
    """One line for an event of the space stream: when (local time), which job, what.

    12:03:04 thumbnail 01JQ... failed: RuntimeError: database is on fire (retrying as #1)
    """
    from datetime import datetime

    when = (event.timestamp or datetime.now()).astimezone().strftime("%H:%M:%S")
    head = f"{when} {event.job_name or '?'} {event.job_id or '?'}"
    data = event.data if isinstance(event.data, dict) else {}
    kind = event.type
    if kind in ("retried", "dead"):  # an attempt failed: with the error it failed with
        error = first_line(data.get("error")) or "(no error given)"
        line = f"{head} failed: {error}"
        attempt = data.get("attemptNumber")
        if kind == "dead":
            return f"{line} (no retries left: dead)"
        return f"{line} (retrying as #{attempt})" if isinstance(attempt, int) else line
    if kind == "logs" and isinstance(data.get("count"), int):
        return f"{head} logs +{data['count']}"
    if kind == "killed":
        reason = first_line(data.get("reason"))
        return f"{head} killed" + (f": {reason}" if reason else "")
    if kind == "progress":
        percent = data.get("percent")
        shown = f"{percent:g}%" if isinstance(percent, int | float) else "?%"
        return f"{head} progress {shown} {first_line(data.get('message'))}".rstrip()
    if kind == "push_failed":  # why, and the fix
        return f"{head} {push_failure(data)}"
    if kind == "push_sent":
        status = data.get("statusCode")
        return f"{head} pushed" + (f" (HTTP {status})" if isinstance(status, int) else "")
    if kind == "pending" and isinstance(data.get("reason"), str):
        return f"{head} pending ({data['reason']})"
    return f"{head} {kind}"


# What status a job was in before an event of this type (None: it depends).
_BEFORE = {
    "created": None,
    "scheduled": None,  # follows `created` of a scheduled job: no change
    "delivered": "pending",
    "running": "delivered",
    "completed": "running",
    "dead": "running",
    "retried": "running",
    "pending": None,  # from scheduled (released) or delivered (delivery timeout)
    "killed": None,
}
_STATUS_EVENTS = set(_BEFORE)


async def _space(client: Any, console: Any, base_url: str | None) -> None:
    from rich.console import Group
    from rich.live import Live
    from rich.markup import escape
    from rich.table import Table

    counts: dict[str, int] = {}
    known: dict[str, str] = {}  # job id -> status, for jobs seen since connecting
    recent: deque[str] = deque(maxlen=15)

    def render() -> Any:
        table = Table(title=f"space {client.space_id}", box=None)
        for status in counts:
            table.add_column(status, justify="right")
        table.add_row(*(str(n) for n in counts.values()))
        log = Table.grid()
        for line in recent:
            log.add_row(line)
        return Group(table, log)

    plain = not console.is_terminal  # piped: one line per event instead of a live view
    live: Live | None = None  # shown from the first event: a server to wait for is a note

    def notice(text: str) -> None:
        if live is None:
            say(text)
        else:
            recent.append(f"[yellow]({escape(text)})[/]")
            live.update(render())

    def show(line: str) -> None:
        recent.append(line)
        if plain:
            console.print(line, soft_wrap=True)

    try:
        opening = client.realtime.connect_space
        async with stream(opening, base_url, notice=notice, wait_for_server=True) as events:
            async for event in events:
                if live is None and not plain:
                    live = Live(render(), console=console, refresh_per_second=8)
                    live.start()
                if event.type == "connected":
                    counts = dict(getattr(event, "counts", {}) or {})
                    known.clear()
                    if plain:
                        shown = ", ".join(f"{status} {n}" for status, n in counts.items())
                        console.print(f"watching space {client.space_id}: {shown}", soft_wrap=True)
                    if getattr(event, "missed", False):
                        show("[yellow](reconnected: counts re-read, events in between missed)[/]")
                else:
                    show(escape(space_line(event)))
                    if event.type in _STATUS_EVENTS and event.status:
                        await _count(client, event, counts, known)
                if live is not None:
                    live.update(render())
    finally:
        if live is not None:
            live.stop()


async def _count(client: Any, event: Any, counts: dict[str, int], known: dict[str, str]) -> None:
    """Move the event's job from the status it left to the one it entered."""
    before = known.get(event.job_id) or await _before(client, event)
    if (
        before in counts
        and event.type not in {"created", "scheduled"}
        or (event.type == "scheduled" and before == "pending")
    ):
        counts[before] = max(0, counts[before] - 1)
    counts[event.status] = counts.get(event.status, 0) + 1
    known[event.job_id] = event.status


async def _before(client: Any, event: Any) -> str | None:
    """The status a job left, for a job first seen in this event."""
    if event.type == "pending":
        reason = event.data.get("reason") if isinstance(event.data, dict) else None
        return "scheduled" if reason == "scheduled" else "delivered"
    before = _BEFORE.get(event.type)
    if before is not None or event.type != "killed":
        return before
    job = await client.jobs.get(event.job_id)  # killed: the last status before it
    for past in reversed(job.events[:-1]):
        if past.type in _STATUS_EVENTS and past.type != "killed":
            return "pending" if past.type in {"created", "retried"} else str(_after(past.type))
    return None


def _after(kind: str) -> str:
    return {"scheduled": "scheduled", "delivered": "delivered", "running": "running",
            "pending": "pending"}.get(kind, "pending")  # fmt: skip
