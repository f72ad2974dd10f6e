"""``emit-push watch JOB_ID`` and ``emit-push watch --space``: live views of the streams.

A job: its status, a progress bar with one bar per sub-progress stage, and its log lines
as they arrive, until it ends (exit 0 when it completed, 1 otherwise). A space: the jobs
per status and the latest events, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import deque
from typing import Any

from ._cli_common import CliError, add_client_flags, client_settings, explained

__all__ = ["add_watch_parser", "run_watch"]

TERMINAL = {"completed", "dead", "killed"}


def add_watch_parser(sub: Any) -> None:
    watch = sub.add_parser("watch", help="follow a job (or the whole space) live")
    watch.add_argument("job_id", nargs="?", help="the job to follow")
    watch.add_argument("--space", action="store_true", help="follow every job of the space")
    add_client_flags(watch)


def run_watch(args: argparse.Namespace) -> int:
    if bool(args.job_id) == bool(args.space):
        raise CliError("name a job to watch, or pass --space (not both)")
    from rich.console import Console

    console = Console(highlight=False)
    with explained(args.base_url, args.job_id):
        try:
            return asyncio.run(_watch(args, console))
        except KeyboardInterrupt:  # how a space watch ends
            return 0 if args.space else 130


async def _watch(args: argparse.Namespace, console: Any) -> int:
    from ._client import AsyncEmitClient
    from ._realtime_protocol import RealtimeError

    async with AsyncEmitClient(**client_settings(args)) as client:
        try:
            if args.space:
                await _space(client, console)
                return 0
            return await _job(client, console, args.job_id)
        except RealtimeError as exc:
            if exc.close_code == 4404:
                raise CliError(f"job {args.job_id} does not exist in this space") from None
            if exc.close_code in {4401, 4403}:
                raise CliError(
                    f"the stream refused the key ({exc.close_code}): check EMIT_API_KEY"
                ) from None
            raise CliError(f"the stream failed: {exc}") from None


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
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        table.add_row(f"[bold]{self.name or self.job_id}[/]", self.status, self.message)
        table.add_row(
            "", ProgressBar(total=100, completed=self.percent, width=40), f"{self.percent:.0f}%"
        )
        for stage, percent in self.stages.items():
            table.add_row(
                f"  {stage}", ProgressBar(total=100, completed=percent, width=40), f"{percent:.0f}%"
            )
        return Group(table)


async def _job(client: Any, console: Any, job_id: str) -> int:
    from rich.live import Live

    view = _JobView(job_id)
    printed: int | None = None
    with Live(view.render(), console=console, refresh_per_second=10) as live:
        async for event in client.realtime.job(job_id, use_api_key=True):
            if event.type == "init" and isinstance(event.data, dict):
                view.name = str(event.data.get("name", ""))
                progress = event.data.get("progress")
                if isinstance(progress, dict):
                    _progress(view, progress)
                view.result = event.data.get("result")
                printed = await _print_logs(client, live, job_id, printed)
            elif event.type == "progress" and isinstance(event.data, dict):
                _progress(view, event.data)
            elif event.type == "logs":
                printed = await _print_logs(client, live, job_id, printed)
            elif event.type in TERMINAL:
                view.result = event.data
            view.status = event.status or view.status
            live.update(view.render())
    console.print(f"{view.status}: {view.result}")
    return 0 if view.status == "completed" else 1


async def _print_logs(client: Any, live: Any, job_id: str, after: int | None) -> int | None:
    """Print the job's log lines after ``after``; returns the last one printed."""
    while True:
        page = await client.jobs.logs(job_id, after=after, limit=1000)
        for entry in page.logs:
            live.console.print(f"[dim]{entry.level:<5}[/] {entry.message}")
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


async def _space(client: Any, console: Any) -> None:
    from rich.console import Group
    from rich.live import Live
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
    with Live(render(), console=console, refresh_per_second=8, auto_refresh=not plain) as live:
        async for event in client.realtime.space(auto_reconnect=True):
            if event.type == "connected":
                counts = dict(getattr(event, "counts", {}) or {})
                known.clear()
                if plain:
                    shown = ", ".join(f"{status} {n}" for status, n in counts.items())
                    console.print(f"watching space {client.space_id}: {shown}", soft_wrap=True)
                if getattr(event, "missed", False):
                    recent.append(
                        "[yellow](reconnected: counts re-read, events in between missed)[/]"
                    )
            else:
                recent.append(f"#{event.seq} {event.job_name or event.job_id}: {event.type}")
                if plain:
                    console.print(recent[-1], soft_wrap=True)
                if event.type in _STATUS_EVENTS and event.status:
                    before = known.get(event.job_id) or await _before(client, event)
                    if (
                        before in counts
                        and event.type not in {"created", "scheduled"}
                        or (event.type == "scheduled" and before == "pending")
                    ):
                        counts[before] = max(0, counts[before] - 1)
                    counts[event.status] = counts.get(event.status, 0) + 1
                    known[event.job_id] = event.status
            if not plain:
                live.update(render())


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
