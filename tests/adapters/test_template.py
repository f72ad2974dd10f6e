"""The SAM template: cfn-lint passes it (and fails a broken copy), and it says what the
deployment needs: secrets never echoed, env vars wired to parameters, the URL output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms: ``!Ref X`` -> ``{"Ref": "X"}``, ``!GetAtt
    A.B`` -> ``{"Fn::GetAtt": ["A", "B"]}``, ``!Sub s`` -> ``{"Fn::Sub": "s"}``."""


def _short_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _short_form)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=_CloudFormationLoader)
    return loaded


def test_cfn_lint_passes_the_template_and_fails_a_broken_copy(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    text = TEMPLATE.read_text()
    assert "EmitPushFunctionUrl.FunctionUrl" in text
    broken.write_text(text.replace("EmitPushFunctionUrl.FunctionUrl", "NoSuchUrl.FunctionUrl"))
    assert CFN_LINT.exists(), "cfn-lint is a dev dependency: pip install -e '.[dev]'"
    run = subprocess.run(
        [str(CFN_LINT), "--format", "parseable", str(TEMPLATE), str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    findings = run.stdout.splitlines()
    assert run.returncode != 0, run.stdout + run.stderr  # the broken copy must fail
    assert [line for line in findings if line.startswith(str(TEMPLATE))] == []
    assert any("NoSuchUrl" in line for line in findings), run.stdout + run.stderr


def test_the_function_runs_the_example_app_with_room_for_a_job(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    (function,) = template["Resources"].values()
    assert function["Type"] == "AWS::Serverless::Function"
    props = function["Properties"]
    assert props["CodeUri"] == "examples/aws_lambda/"
    assert props["Handler"] == "app.handler"
    assert props["Runtime"] in ("python3.11", "python3.12")
    assert props["Architectures"] in (["x86_64"], ["arm64"])
    assert 60 <= props["Timeout"] <= 900  # the job runs inside the invocation
    assert props["MemorySize"] >= 256
    assert props["FunctionUrlConfig"] == {"AuthType": "NONE"}  # the push secret guards it


def test_parameters_feed_the_environment_and_secrets_are_no_echo(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert {name: params[name].get("NoEcho", False) for name in params} == {
        "EmitSpaceId": False,
        "EmitApiKey": True,
        "EmitPushSecret": True,
        "EmitBaseUrl": False,
        "EmitSweep": False,
    }
    assert params["EmitBaseUrl"]["Default"] == "https://emit.run/api/v1"
    (function,) = template["Resources"].values()
    assert function["Properties"]["Environment"]["Variables"] == {
        "EMIT_SPACE_ID": {"Ref": "EmitSpaceId"},
        "EMIT_API_KEY": {"Ref": "EmitApiKey"},
        "EMIT_PUSH_SECRET": {"Ref": "EmitPushSecret"},
        "EMIT_BASE_URL": {"Ref": "EmitBaseUrl"},
    }


def test_a_schedule_sweeps_every_minute_and_is_on_by_default(template: dict[str, Any]) -> None:
    """Lost pushes: an EventBridge schedule invokes the function with a "Scheduled Event",
    which the Lambda adapter runs as a sweep; one parameter turns it off."""
    (function,) = template["Resources"].values()
    events = function["Properties"]["Events"]
    schedules = [e for e in events.values() if e["Type"] == "Schedule"]
    assert len(schedules) == 1
    props = schedules[0]["Properties"]
    assert props["Schedule"] == "rate(1 minute)"
    assert props["State"] == {"Ref": "EmitSweep"}
    assert "Enabled" not in props  # State decides (SAM takes one or the other)
    switch = template["Parameters"]["EmitSweep"]
    assert (switch["Default"], sorted(switch["AllowedValues"])) == (
        "ENABLED",
        ["DISABLED", "ENABLED"],
    )


def test_outputs_give_the_push_url_and_the_function_arn(template: dict[str, Any]) -> None:
    (name,) = template["Resources"]
    outputs = template["Outputs"]
    assert outputs["PushUrl"]["Value"] == {"Fn::GetAtt": [f"{name}Url", "FunctionUrl"]}
    assert "push settings" in outputs["PushUrl"]["Description"]
    assert outputs["FunctionArn"]["Value"] == {"Fn::GetAtt": [name, "Arn"]}


def test_sam_build_installs_the_lambda_extra() -> None:
    requirements = (ROOT / "examples/aws_lambda/requirements.txt").read_text().splitlines()
    assert [line for line in requirements if line and not line.startswith("#")] == [
        "emit-push[lambda]"
    ]
