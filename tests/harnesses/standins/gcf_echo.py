"""A stand-in functions-framework HTTP function: echoes the request and its process."""

from __future__ import annotations

import os
from typing import Any

import flask
import functions_framework

_counter = {"requests": 0}


@functions_framework.http
def echo(request: flask.Request) -> tuple[dict[str, Any], int]:
    _counter["requests"] += 1
    return {
        "method": request.method,
        "path": request.path,
        "body": request.get_json(silent=True),
        "authorization": request.headers.get("authorization"),
        "env": os.environ.get("STANDIN_ECHO_ENV"),
        "pid": os.getpid(),
        "requests": _counter["requests"],
    }, 200
