"""``emit-push server``: the local emit server, in the foreground."""

from __future__ import annotations

import argparse
import signal
from typing import TYPE_CHECKING

from .common import CliError, UsageError
from .serving import base_url, bind, check_database, uvicorn_server

if TYPE_CHECKING:
    from ..server import EmitServer, KeySpec, ServerConfig

__all__ = ["run_server", "server_config"]


def run_server(args: argparse.Namespace) -> int:
    from ..server import EmitServer

    config = server_config(args)
    check_database(config.db_path)
    emit = EmitServer(config)
    sock = bind(args.host, args.port)
    url = base_url(sock)
    server = uvicorn_server(emit, args.log_level, on_started=lambda: _print_banner(emit, url))
    # uvicorn re-raises the signal that stopped it; answering it here makes Ctrl-C a clean exit.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    try:
        server.run(sockets=[sock])  # on uvloop when it is installed
    except RuntimeError as exc:  # e.g. a database of another schema version
        raise CliError(str(exc)) from None
    print("emit local server stopped", flush=True)
    return 0 if server.started else 1


def server_config(args: argparse.Namespace) -> ServerConfig:
    from ..server import DEFAULT_DB_PATH, ServerConfig

    rate = None
    if args.rate_limit not in (None, ""):
        try:
            rate = float(args.rate_limit)
        except ValueError:
            raise UsageError(f"--rate-limit wants a number, got {args.rate_limit[:20]!r}") from None
        if not rate > 0:  # also NaN
            raise UsageError(f"--rate-limit must be greater than 0, got {args.rate_limit[:20]}")
    try:
        return ServerConfig(
            db_path=args.db or DEFAULT_DB_PATH,
            space_id=args.space_id,
            worker_key=args.worker_key,
            producer_key=args.producer_key,
            progress_token=args.progress_token,
            api_keys=[_key_spec(text) for text in args.api_key],
            rate_limit=rate,
        )
    except ValueError as exc:  # a flag's value the configuration refuses
        raise UsageError(str(exc)) from None


def _key_spec(text: str) -> KeySpec:
    from ..server import KeySpec
    from ..server._scopes import unknown_scopes

    key, sep, scopes_text = text.partition("=")
    scopes = [s for s in scopes_text.split(",") if s]
    if not sep or not key or not scopes:
        raise UsageError(f"--api-key wants KEY=SCOPE[,SCOPE...], got {text.split('=')[0][:6]}...")
    if unknown := unknown_scopes(scopes):
        raise UsageError(f"--api-key: unknown scope {unknown[0]!r}")
    return KeySpec(key=key, scopes=scopes)


def _print_banner(emit: EmitServer, url: str) -> None:
    c = emit.credentials
    print(
        f"emit local server  {url}\n"
        f"  dashboard       {url.removesuffix('/api/v1')}/dashboard/\n"
        f"  database        {emit.config.db_path}\n"
        f"  space id        {c.space_id}\n"
        f"  worker key      {c.worker_key}    (jobs:worker)\n"
        f"  producer key    {c.producer_key}    (jobs:create jobs:read jobs:kill space:admin)\n"
        f"  progress token  {c.progress_token}    (jobs:read:progress)\n"
        "\n  # your app, or emit-push worker:\n"
        f"  export EMIT_BASE_URL={url} EMIT_SPACE_ID={c.space_id} EMIT_API_KEY={c.worker_key}\n"
        "  # emit-push jobs and watch (a producer's settings):\n"
        f"  export EMIT_BASE_URL={url} EMIT_SPACE_ID={c.space_id} EMIT_API_KEY={c.producer_key}\n"
        "\nPress Ctrl-C to stop.",
        flush=True,
    )
