"""The AWS Lambda adapter: Function URL and API Gateway (HTTP v2, REST v1) events.

    handler = lambda_handler(app)       # template.yaml: Handler: app.handler

Mangum translates the event into an ASGI request for ``app.asgi()`` (lifespan off) and
runs it on the thread's current event loop. ``lambda_handler`` makes one loop and sets
it as the current loop of the thread that calls it (unless that thread runs one: then at
the first invocation), and of the invoking thread at each invocation: Mangum finds it,
from any thread, with no deprecated implicit loop creation (which Python 3.14 removes).
``EmitPush`` keeps one API client (one connection pool) per loop, so warm invocations
reuse both. The context's remaining time sets the run's deadline.

A scheduled event (EventBridge: ``"source": "aws.events"``, ``"detail-type": "Scheduled
Event"``; ``template.yaml`` sends one a minute) is no request: it runs ``app.sweep()``
within the invocation's remaining time, so jobs whose push was lost still run, and
answers what ran. Only such an event loads the sweep.

The API key and the push secret may live in AWS Secrets Manager or SSM Parameter Store
(``template.yaml`` keeps them there): ``EMIT_API_KEY_FROM`` / ``EMIT_PUSH_SECRET_FROM``
name them, as ``secretsmanager:<secret id>`` or ``ssm:<parameter name>`` (a SecureString
is decrypted), optionally with ``#<key>`` to take one key of a JSON value. They are read
with boto3 (the Lambda runtime's), imported then, at the first invocation, not at a cold
start; once per container, as the handler keeps what it read. A failed read fails that
invocation with a ``ConfigurationError`` naming the variable, and the next one tries again.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple

from .._exceptions import ConfigurationError
from .._extras import requires
from .._framework.app import EmitPush, default_app
from .._framework.auth import PushAuth

# Without the lambda extra (Mangum, and Starlette under the ASGI adapter), importing this
# module raises a one-line MissingExtraError: pip install 'emit-push[lambda]'.
with requires("lambda", "emit_push.adapters.aws_lambda"):
    from mangum import Mangum

    from .asgi import LambdaContext, asgi_app, remaining_time

__all__ = ["LambdaContext", "is_scheduled", "lambda_handler"]

LambdaHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]
Setting = Literal["api_key", "push_secret"]
Store = Literal["secretsmanager", "ssm"]
FROM: dict[Setting, str] = {"api_key": "EMIT_API_KEY_FROM", "push_secret": "EMIT_PUSH_SECRET_FROM"}
STORES: dict[str, Store] = {"secretsmanager": "secretsmanager", "ssm": "ssm"}


def lambda_handler(app: EmitPush | None = None) -> LambdaHandler:
    """A Lambda handler serving ``app`` (default: the app of the module-level ``on_job``).

    Settings are checked here, at your module's import (``app.runner.prepare()``): a
    malformed one raises ``ConfigurationError``; missing ones do not stop it (a warning
    names them, and so does each push until they are set). When ``EMIT_API_KEY_FROM`` or
    ``EMIT_PUSH_SECRET_FROM`` is set, those are read, and the settings checked, at the
    first invocation instead; a reference of another form, or one to a setting the app
    has already, raises ``ConfigurationError`` here.
    """
    app = app or default_app()
    stored = _stored_settings(app, os.environ)
    if not stored:
        app.runner.prepare()  # nothing to read: check the settings now, at the cold start
    # The container's one event loop, in a box: closed with the handler (a test that
    # imports an app module and drops it leaves no loop open behind it).
    box: list[asyncio.AbstractEventLoop | None] = [None]
    try:
        asyncio.get_running_loop()  # made in async code (a test): Mangum takes that loop
    except RuntimeError:  # imported by the runtime: set ours before Mangum makes its own
        box[0] = asyncio.new_event_loop()
        asyncio.set_event_loop(box[0])
    adapter = None if stored else _serve(app)

    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        nonlocal adapter
        loop = box[0]
        if loop is None or loop.is_closed():
            loop = box[0] = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # where Mangum looks for it
        if adapter is None:  # the first invocation: read them once, for the container
            _use(app, _read_stored(stored))
            adapter = _serve(app)
        if is_scheduled(event):
            results = loop.run_until_complete(app.sweep(remaining_time=remaining_time(context)))
            return {"swept": [result.body() for result in results]}
        response: dict[str, Any] = adapter(event, context)  # type: ignore[arg-type]
        return response

    weakref.finalize(handler, _close, box)
    return handler


def _close(box: list[asyncio.AbstractEventLoop | None]) -> None:
    loop = box[0]
    if loop is not None and not loop.is_closed() and not loop.is_running():
        loop.close()


def is_scheduled(event: object) -> bool:
    """Whether ``event`` is an EventBridge schedule's (a sweep), not a request."""
    return (
        isinstance(event, dict)
        and event.get("source") == "aws.events"
        and event.get("detail-type") == "Scheduled Event"
    )


def _serve(app: EmitPush) -> Mangum:
    return Mangum(asgi_app(app, any_path=True), lifespan="off")


# -- settings kept in Secrets Manager or SSM Parameter Store ------------------------------


class _Stored(NamedTuple):
    """Where a setting is kept: ``EMIT_API_KEY_FROM=ssm:/emit/api-key`` and the like."""

    variable: str
    store: Store
    name: str
    key: str | None  # "#key": the value is a JSON object; take this key's

    def __str__(self) -> str:
        return f"{self.variable}={self.store}:{self.name}" + (f"#{self.key}" if self.key else "")


def _stored_settings(app: EmitPush, environ: Mapping[str, str]) -> dict[Setting, _Stored]:
    """The settings ``environ`` says to read from a store, checked without I/O.

    Raises ``ConfigurationError`` for a reference of another form, or for a setting that
    the app also has from elsewhere (which one would win is not obvious: keep one).
    """
    found: dict[Setting, _Stored] = {}
    for setting, variable in FROM.items():
        text = environ.get(variable, "").strip()
        if not text:
            continue
        prefix, _, rest = text.partition(":")
        name, _, key = rest.strip().partition("#")
        store = STORES.get(prefix.strip())
        if store is None or not name.strip():
            raise ConfigurationError(
                f"{variable} must be secretsmanager:<secret id> or ssm:<parameter name>"
                f" (optionally #<key> for one key of a JSON value), not {text!r}"
            )
        found[setting] = _Stored(variable, store, name.strip(), key.strip() or None)
    runner = app.runner
    has = {
        "api_key": runner.given_client is not None
        or runner.setting("api_key") is not None
        or bool(environ.get("EMIT_API_KEY")),
        "push_secret": runner.auth.enabled,
    }
    for setting, where in found.items():
        if has[setting]:
            plain = "EMIT_API_KEY" if setting == "api_key" else "EMIT_PUSH_SECRET"
            raise ConfigurationError(
                f"{where.variable} is set, but the app has its {setting} already (from"
                f" {plain} or EmitPush({setting}=...)): keep one"
            )
    return found


def _read_stored(stored: Mapping[Setting, _Stored]) -> dict[Setting, str]:
    """Each stored setting's value, read with boto3 (imported now, not at a cold start)."""
    if not stored:
        return {}
    boto3 = importlib.import_module("boto3")
    errors = importlib.import_module("botocore.exceptions")
    config = importlib.import_module("botocore.config").Config(
        connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
    )
    session = boto3.session.Session()
    clients: dict[str, Any] = {}
    values: dict[Setting, str] = {}
    for setting, where in stored.items():
        try:
            if where.store not in clients:
                clients[where.store] = session.client(where.store, config=config)
            client = clients[where.store]
            if where.store == "ssm":
                answer = client.get_parameter(Name=where.name, WithDecryption=True)
                value = answer["Parameter"]["Value"]
            else:
                value = client.get_secret_value(SecretId=where.name).get("SecretString")
        except (errors.BotoCoreError, errors.ClientError) as exc:
            raise ConfigurationError(f"could not read {where}: {exc}") from exc
        values[setting] = _value(where, value)
    return values


def _value(where: _Stored, value: object) -> str:
    if where.key is not None and isinstance(value, str):
        try:
            value = json.loads(value).get(where.key)
        except (ValueError, AttributeError):
            value = None
    if not isinstance(value, str) or not value.strip():
        what = f"a JSON object with a text {where.key!r}" if where.key else "text"
        raise ConfigurationError(f"{where} is not {what}")
    return value.strip()


def _use(app: EmitPush, values: Mapping[Setting, str]) -> None:
    """The values read take the place of the missing settings (no os.environ is written)."""
    runner = app.runner
    if "push_secret" in values:
        runner.auth = PushAuth.of(values["push_secret"], runner.auth.header)
    if "api_key" in values:
        # The app was made without a key (_stored_settings checked): its clients are made
        # from these settings, at the first call, after this.
        runner.give_settings(api_key=values["api_key"])
