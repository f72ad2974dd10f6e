"""The Lambda adapter reads the API key and the push secret from AWS Secrets Manager or SSM
Parameter Store: at the first invocation (not at import), once per container.

The real boto3 client talks to a stub on 127.0.0.1 that speaks the services' JSON
protocol (``X-Amz-Target: secretsmanager.GetSecretValue`` / ``AmazonSSM.GetParameter``),
found through ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` / ``AWS_ENDPOINT_URL_SSM``;
``AWS_ENDPOINT_URL`` sends any other service there too, so no AWS address is ever used.
The key read is the one the local emit server checks: a job completes only with it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from emit_push import ConfigurationError, EmitPush
from emit_push.adapters.aws_lambda import lambda_handler
from tests.conftest import ADMIN_KEY, SPACE, WORKER_KEY, LiveServer
from tests.harnesses.events import EVENTS_DIR, build_event

PUSH_SECRET = "secret-from-the-store"
ROOT = Path(__file__).resolve().parents[2]


class Context:
    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class Store:
    """Secrets Manager and SSM Parameter Store on loopback: what they hold, what was asked."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.parameters: dict[str, str] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        store = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                target = self.headers.get("x-amz-target", "")
                store.requests.append((target, body))
                assert self.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")  # signed
                status, answer = store.answer(target, body)
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/x-amz-json-1.1")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, target: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if target == "secretsmanager.GetSecretValue":
            if body["SecretId"] in self.secrets:
                arn = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{body['SecretId']}-AbCdEf"
                return 200, {
                    "ARN": arn,
                    "Name": body["SecretId"],
                    "SecretString": self.secrets[body["SecretId"]],
                    "VersionId": "v1",
                }
            message = "Secrets Manager can't find the specified secret."
            return 400, {"__type": "ResourceNotFoundException", "message": message}
        if target == "AmazonSSM.GetParameter":
            if body["Name"] in self.parameters:
                value = self.parameters[body["Name"]]
                if not body.get("WithDecryption"):
                    value = "AQICAHg...encrypted"
                return 200, {
                    "Parameter": {"Name": body["Name"], "Type": "SecureString", "Value": value}
                }
            return 400, {"__type": "ParameterNotFound", "message": ""}
        return 400, {"__type": "UnknownOperationException", "message": target}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Store]:
    stub = Store()
    for name in ("EMIT_API_KEY", "EMIT_PUSH_SECRET", "EMIT_SPACE_ID", "EMIT_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ENDPOINT_URL": stub.url,  # any service: never an AWS address
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": stub.url,
        "AWS_ENDPOINT_URL_SSM": stub.url,
        "AWS_REGION": "us-east-1",  # what Lambda sets
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "ASIATESTING",  # the function role's, in Lambda
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    yield stub
    stub.close()


def push_event(job_id: str, secret: str) -> dict[str, Any]:
    push = {"type": "job.pending", "jobId": job_id, "name": "thumbnail"}
    return build_event("lambda_function_url", push, {"authorization": f"Bearer {secret}"})


def new_job(admin: httpx.Client) -> str:
    job: dict[str, Any] = admin.post(
        f"/spaces/{SPACE}/jobs", json={"name": "thumbnail", "payload": {"size": 64}}
    ).json()
    return str(job["id"])


def status_of(answer: dict[str, Any]) -> tuple[int, str | None]:
    return answer["statusCode"], json.loads(answer["body"]).get("status")


def finish(app: EmitPush) -> None:
    """Close the app's clients and the loop the handler set for this thread."""
    loop = asyncio.get_event_loop()  # the handler's (set as this thread's current loop)
    loop.run_until_complete(app.aclose())
    loop.close()
    asyncio.set_event_loop(None)


def make_app(live_server: LiveServer) -> EmitPush:
    app = EmitPush(space_id=SPACE, base_url=live_server.base_url)  # no key, no push secret
    app.on_job("thumbnail")(lambda job: {"made": job.payload["size"]})
    return app


def test_from_secrets_manager_at_the_first_invocation_once_per_container(
    store: Store, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.secrets = {"emit/api-key": WORKER_KEY, "emit/push-secret": PUSH_SECRET}
    monkeypatch.setenv("EMIT_API_KEY_FROM", "secretsmanager:emit/api-key")
    monkeypatch.setenv("EMIT_PUSH_SECRET_FROM", "secretsmanager:emit/push-secret")
    app = make_app(live_server)
    handler = lambda_handler(app)
    assert store.requests == []  # not at import: the cold start reads nothing
    with httpx.Client(base_url=live_server.base_url, headers={"x-api-key": ADMIN_KEY}) as admin:
        job_id = new_job(admin)
        assert status_of(handler(push_event(job_id, "a-guess"), Context()))[0] == 401
        assert status_of(handler(push_event(job_id, PUSH_SECRET), Context())) == (
            200,
            "completed",
        )  # claimed, acked and completed with the key from the store
        assert status_of(handler(push_event(new_job(admin), PUSH_SECRET), Context())) == (
            200,
            "completed",
        )
        assert admin.get(f"/jobs/{job_id}").json()["result"] == {"made": 64}
    assert store.requests == [  # read at the first invocation, and never again
        ("secretsmanager.GetSecretValue", {"SecretId": "emit/api-key"}),
        ("secretsmanager.GetSecretValue", {"SecretId": "emit/push-secret"}),
    ]
    finish(app)


def test_from_ssm_securestrings_decrypted_and_a_sweep_may_come_first(
    store: Store, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.parameters = {"/emit/api-key": WORKER_KEY, "/emit/push-secret": PUSH_SECRET}
    monkeypatch.setenv("EMIT_API_KEY_FROM", "ssm:/emit/api-key")
    monkeypatch.setenv("EMIT_PUSH_SECRET_FROM", "ssm:/emit/push-secret")
    app = make_app(live_server)
    handler = lambda_handler(app)
    scheduled = json.loads((EVENTS_DIR / "eventbridge_scheduled.json").read_text())
    with httpx.Client(base_url=live_server.base_url, headers={"x-api-key": ADMIN_KEY}) as admin:
        job_id = new_job(admin)  # its push is lost: the sweep, the first invocation, runs it
        answer = handler(scheduled, Context())
        assert [(r["status"], r["jobId"]) for r in answer["swept"]] == [("completed", job_id)]
        assert status_of(handler(push_event(new_job(admin), PUSH_SECRET), Context())) == (
            200,
            "completed",
        )
    assert store.requests == [
        ("AmazonSSM.GetParameter", {"Name": "/emit/api-key", "WithDecryption": True}),
        ("AmazonSSM.GetParameter", {"Name": "/emit/push-secret", "WithDecryption": True}),
    ]
    finish(app)


def test_one_json_secret_can_hold_both(
    store: Store, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.secrets = {"emit/worker": json.dumps({"apiKey": WORKER_KEY, "push": PUSH_SECRET})}
    monkeypatch.setenv("EMIT_API_KEY_FROM", "secretsmanager:emit/worker#apiKey")
    monkeypatch.setenv("EMIT_PUSH_SECRET_FROM", "secretsmanager:emit/worker#push")
    app = make_app(live_server)
    handler = lambda_handler(app)
    with httpx.Client(base_url=live_server.base_url, headers={"x-api-key": ADMIN_KEY}) as admin:
        answer = handler(push_event(new_job(admin), PUSH_SECRET), Context())
    assert status_of(answer) == (200, "completed")
    finish(app)


def test_a_failed_read_fails_the_invocation_and_the_next_one_reads_again(
    store: Store, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMIT_API_KEY_FROM", "secretsmanager:emit/api-key")
    app = make_app(live_server)
    app.runner.auth = type(app.runner.auth).of(PUSH_SECRET, "authorization")
    handler = lambda_handler(app)
    with httpx.Client(base_url=live_server.base_url, headers={"x-api-key": ADMIN_KEY}) as admin:
        job_id = new_job(admin)
        with pytest.raises(ConfigurationError) as failed:
            handler(push_event(job_id, PUSH_SECRET), Context())
        message = str(failed.value)
        assert "EMIT_API_KEY_FROM=secretsmanager:emit/api-key" in message
        assert "ResourceNotFoundException" in message
        assert WORKER_KEY not in message
        store.secrets["emit/api-key"] = WORKER_KEY  # made now: the next invocation finds it
        answer = handler(push_event(job_id, PUSH_SECRET), Context())
    assert status_of(answer) == (200, "completed")
    assert len(store.requests) == 2
    finish(app)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ('{"apiKey": "k"}', "is not a JSON object with a text 'key'"),
        ("not json", "is not a JSON object with a text 'key'"),
        ('["k"]', "is not a JSON object with a text 'key'"),
        ('{"key": 1}', "is not a JSON object with a text 'key'"),
    ],
)
def test_a_json_key_that_is_not_there_is_named(
    store: Store, monkeypatch: pytest.MonkeyPatch, value: str, error: str
) -> None:
    store.secrets = {"s": value}
    monkeypatch.setenv("EMIT_API_KEY_FROM", "secretsmanager:s#key")
    app = EmitPush(space_id=SPACE, base_url="http://127.0.0.1:9/api/v1")
    handler = lambda_handler(app)
    with pytest.raises(ConfigurationError, match=f"EMIT_API_KEY_FROM=secretsmanager:s#key {error}"):
        handler(push_event("01JNOSUCHJOB0000000000000", "x"), Context())
    asyncio.get_event_loop().close()
    asyncio.set_event_loop(None)


@pytest.mark.parametrize(
    ("env", "kwargs", "error"),
    [
        ({"EMIT_API_KEY_FROM": "vault:emit/key"}, {}, "EMIT_API_KEY_FROM must be secretsmanager:"),
        ({"EMIT_PUSH_SECRET_FROM": "ssm:"}, {}, "EMIT_PUSH_SECRET_FROM must be"),
        ({"EMIT_API_KEY_FROM": "secretsmanager:#key"}, {}, "EMIT_API_KEY_FROM must be"),
        (
            {"EMIT_API_KEY_FROM": "ssm:/k", "EMIT_API_KEY": "plain"},
            {},
            "EMIT_API_KEY_FROM is set, but the app has its api_key already",
        ),
        ({"EMIT_API_KEY_FROM": "ssm:/k"}, {"api_key": "k"}, "keep one"),
        (
            {"EMIT_PUSH_SECRET_FROM": "ssm:/p"},
            {"push_secret": "p"},
            "EMIT_PUSH_SECRET_FROM is set, but the app has its push_secret already",
        ),
    ],
)
def test_a_reference_is_checked_when_the_handler_is_made(
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    kwargs: dict[str, str],
    error: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = EmitPush(space_id=SPACE, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=error):
        lambda_handler(app)
    assert store.requests == []


def test_the_cold_start_loads_no_aws_client(tmp_path: Path) -> None:
    """With the secrets in a store, importing the Lambda example (what the runtime does at
    a cold start) needs no key, reads nothing and imports neither boto3 nor botocore."""
    script = """
import json, sys
before = set(sys.modules)
import app
assert callable(app.handler)
print(json.dumps(sorted(set(sys.modules) - before)))
"""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("EMIT_", "AWS_"))},
        "PYTHONPATH": str(ROOT / "examples" / "aws_lambda"),
        "EMIT_SPACE_ID": SPACE,
        "EMIT_API_KEY_FROM": "secretsmanager:emit/api-key",
        "EMIT_PUSH_SECRET_FROM": "ssm:/emit/push-secret",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # closed: a read would fail the import
    }
    run = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    loaded = set(json.loads(run.stdout.splitlines()[-1]))
    assert "emit_push.adapters.aws_lambda" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in {"boto3", "botocore", "urllib3"}) == []
