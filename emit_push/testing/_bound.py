"""Copies of an app that talk to another service: the user's app is never changed.

A test binds an app to the local server (or to a recording job) by copying it: the copy
shares the handlers, options, middleware and push secret, and has its own client. Every
change of a copy's handlers is here, in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._client import AsyncEmitClient
from .._framework.app import EmitPush
from .._framework.execution import Middleware
from .._framework.handlers import Handler
from .._framework.options import DEFAULTS, check_names, resolve

__all__ = ["check_options", "push_headers", "with_client", "with_options"]


def with_client(
    app: EmitPush, client: AsyncEmitClient, *, middleware: Sequence[Middleware] = ()
) -> EmitPush:
    """A copy of ``app`` whose API calls go through ``client``; ``middleware`` runs innermost.

    Registering handlers or middleware on the copy does not change ``app``, nor the reverse.
    """
    bound = app.with_client(client)
    for layer in middleware:
        bound.middleware(layer)
    return bound


def check_options(options: Mapping[str, Any]) -> None:
    """TypeError unless every name is a job option (``on_job``'s, but ``payload``)."""
    check_names(options, DEFAULTS, "run_handler", "job options")


def with_options(bound: EmitPush, handler: Handler, options: Mapping[str, Any]) -> Handler:
    """Override job options of ``handler`` on the copy ``bound``; returns the new handler."""
    resolved = resolve(handler.options, options)
    changed = Handler(handler.name, handler.func, handler.is_async, handler.payload, resolved)
    bound.runner.handlers[handler.name] = changed
    return changed


def push_headers(app: EmitPush) -> dict[str, str]:
    """The header a push carries when the space's push settings match the app's secret."""
    auth = app.push_auth
    if not auth.secrets:
        return {}
    secret = auth.secrets[0]
    return {auth.header: f"Bearer {secret}" if auth.header == "authorization" else secret}
