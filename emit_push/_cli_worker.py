"""``emit-push worker APP``: the app's ``@on_job`` handlers as a polling worker."""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from ._cli_common import add_client_flags, client_settings, explained, load_app

__all__ = ["add_worker_parser", "run_worker"]


def add_worker_parser(sub: Any) -> None:
    worker = sub.add_parser("worker", help="run your app's handlers as a polling worker")
    worker.add_argument("app", metavar="APP", help="module:attr or path/to/file.py[:attr]")
    worker.add_argument("--count", type=int, default=1, help="jobs run at once (1-50)")
    worker.add_argument("--types", nargs="*", help="job names to take (default: the app's)")
    worker.add_argument("--poll-interval", type=float, default=1.0)
    worker.add_argument("--max-backoff", type=float, default=15.0)
    worker.add_argument("--grace-period", type=float, default=30.0)
    add_client_flags(worker)


def run_worker(args: argparse.Namespace) -> int:
    # The flags become the environment the app reads its settings from, at its import.
    for key, value in client_settings(args).items():
        if value:
            os.environ[f"EMIT_{key.upper()}"] = value
    with explained(args.base_url):  # import errors and missing settings too: one line
        app = load_app(args.app)
        app.prepare()
        print(f"emit-push worker: {', '.join(sorted(app.handlers))} (Ctrl-C stops)", flush=True)
        asyncio.run(
            app.run_polling(
                types=args.types or None,
                count=args.count,
                poll_interval=args.poll_interval,
                max_backoff=args.max_backoff,
                grace_period=args.grace_period,
            )
        )
    print("emit-push worker stopped", flush=True)
    return 0
