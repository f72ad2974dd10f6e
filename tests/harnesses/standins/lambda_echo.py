"""A stand-in Lambda handler: echoes the HTTP request inside an API Gateway / Function URL
event, with what the runtime gave it (remaining time, request id) and what proves a warm
process (pid, a per-process boot id, a per-process invocation count).

Test controls ride on request headers, so the body stays a real push:
``x-standin-raise: <message>`` raises ValueError; ``x-standin-sleep: <seconds>`` sleeps.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from typing import Any

BOOT_ID = uuid.uuid4().hex  # new in every process: same value = warm invocation
_counter = {"invocations": 0}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    remaining_ms = context.get_remaining_time_in_millis()
    _counter["invocations"] += 1
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    if "x-standin-raise" in headers:
        raise ValueError(headers["x-standin-raise"])
    if "x-standin-sleep" in headers:
        time.sleep(float(headers["x-standin-sleep"]))
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    echo = {
        "body": json.loads(body) if body else None,
        "headers": headers,
        "method": event.get("httpMethod") or event["requestContext"]["http"]["method"],
        "remaining_ms": remaining_ms,
        "request_id": context.aws_request_id,
        "function_arn": context.invoked_function_arn,
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
        "client_context": context.client_context and context.client_context.custom,
        "cognito_identity_id": context.identity.cognito_identity_id,
        "env": os.environ.get("STANDIN_ECHO_ENV"),
        "pid": os.getpid(),
        "boot_id": BOOT_ID,
        "invocations": _counter["invocations"],
    }
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "isBase64Encoded": False,
        "body": json.dumps(echo),
    }
