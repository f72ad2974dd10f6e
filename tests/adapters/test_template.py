"""The SAM template: cfn-lint passes it (and fails a broken copy), and it says what the
deployment needs: secrets kept in Secrets Manager or SSM (never in parameters or plain
env vars), arm64 built by the example's Makefile, JSON logs with a retention, optional
tracing and reserved concurrency, the sweep schedule, the URL output. ``sam validate
--lint`` and ``sam build`` run in tests/adapters/test_sam_build.py (slow)."""

from __future__ import annotations

import re
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


def function_of(template: dict[str, Any]) -> dict[str, Any]:
    functions = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"
    ]
    assert len(functions) == 1
    return functions[0]


def test_the_function_runs_the_example_app_with_room_for_a_job(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    function = function_of(template)
    props = function["Properties"]
    assert props["CodeUri"] == "examples/aws_lambda/"
    assert props["Handler"] == "app.handler"
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    assert 60 <= props["Timeout"] <= 900  # the job runs inside the invocation
    assert props["MemorySize"] >= 256
    assert props["FunctionUrlConfig"] == {"AuthType": "NONE"}  # the push secret guards it


def test_sam_build_runs_the_examples_makefile_for_the_templates_platform(
    template: dict[str, Any],
) -> None:
    """BuildMethod makefile: examples/aws_lambda/Makefile packages this checkout (no
    requirements.txt: the package index has no emit-push to give). Its defaults name the
    template's architecture and Python (tests/adapters/test_sam_build.py builds it)."""
    function = function_of(template)
    (name,) = [k for k, v in template["Resources"].items() if v is function]
    assert function["Metadata"] == {"BuildMethod": "makefile"}
    makefile = (ROOT / "examples/aws_lambda/Makefile").read_text()
    assert f"\nbuild-{name}:\n" in makefile
    defaults = dict(re.findall(r"^(LAMBDA_ARCH|LAMBDA_PYTHON) \?= (\S+)$", makefile, flags=re.M))
    props = function["Properties"]
    arch = {"arm64": "aarch64", "x86_64": "x86_64"}[props["Architectures"][0]]
    assert (defaults["LAMBDA_ARCH"], f"python{defaults['LAMBDA_PYTHON']}") == (
        arch,
        props["Runtime"],
    )
    assert "--only-binary=:all:" in makefile
    assert not (ROOT / "examples/aws_lambda/requirements.txt").exists()


def test_no_secret_is_a_parameter_or_a_plain_environment_variable(template: dict[str, Any]) -> None:
    """The key and the push secret stay in Secrets Manager or SSM Parameter Store: the
    template names them, the function reads them (EMIT_*_FROM), and may read only them."""
    params = template["Parameters"]
    assert not [name for name in params if params[name].get("NoEcho")]
    assert params["EmitBaseUrl"]["Default"] == "https://emit.run/api/v1"
    store = params["EmitSecretStore"]
    assert (store["Default"], store["AllowedValues"]) == (
        "secretsmanager",
        ["secretsmanager", "ssm"],
    )
    assert template["Conditions"]["SecretsInSsm"] == {
        "Fn::Equals": [{"Ref": "EmitSecretStore"}, "ssm"]
    }
    env = function_of(template)["Properties"]["Environment"]["Variables"]
    assert env == {
        "EMIT_SPACE_ID": {"Ref": "EmitSpaceId"},
        "EMIT_BASE_URL": {"Ref": "EmitBaseUrl"},
        "EMIT_API_KEY_FROM": {
            "Fn::If": [
                "SecretsInSsm",
                {"Fn::Sub": "ssm:/${EmitApiKeyName}"},
                {"Fn::Sub": "secretsmanager:${EmitApiKeyName}"},
            ]
        },
        "EMIT_PUSH_SECRET_FROM": {
            "Fn::If": [
                "SecretsInSsm",
                {"Fn::Sub": "ssm:/${EmitPushSecretName}"},
                {"Fn::Sub": "secretsmanager:${EmitPushSecretName}"},
            ]
        },
    }


def test_the_function_may_read_its_two_secrets_and_nothing_else(template: dict[str, Any]) -> None:
    policies = function_of(template)["Properties"]["Policies"]
    read = []
    for policy in policies:
        condition, in_ssm, in_secrets_manager = policy["Fn::If"]
        assert condition == "SecretsInSsm"
        (name,) = in_ssm["SSMParameterReadPolicy"]["ParameterName"].values()
        arn = in_secrets_manager["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"]["Fn::Sub"]
        assert arn == (
            "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}"
            f":secret:${{{name}}}-??????"
        )
        read.append(name)
    assert read == ["EmitApiKeyName", "EmitPushSecretName"]


def test_logs_are_json_in_a_group_with_a_retention(template: dict[str, Any]) -> None:
    props = function_of(template)["Properties"]
    logging = props["LoggingConfig"]
    assert logging["LogFormat"] == "JSON"
    assert logging["ApplicationLogLevel"] == {"Ref": "LogLevel"}
    assert logging["SystemLogLevel"] in ("DEBUG", "INFO", "WARN")
    group = template["Resources"][logging["LogGroup"]["Ref"]]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    params = template["Parameters"]
    assert params["LogLevel"]["Default"] == "INFO"
    assert params["LogRetentionDays"]["Default"] in params["LogRetentionDays"]["AllowedValues"]


def test_tracing_and_reserved_concurrency_are_optional(template: dict[str, Any]) -> None:
    props = function_of(template)["Properties"]
    params = template["Parameters"]
    assert props["Tracing"] == {"Ref": "TracingMode"}
    tracing = params["TracingMode"]
    assert (tracing["Default"], sorted(tracing["AllowedValues"])) == (
        "PassThrough",
        ["Active", "PassThrough"],
    )
    # Unset (the default): no reservation at all, not a reservation of 0 (which stops it).
    assert params["ReservedConcurrency"]["Default"] == ""
    assert template["Conditions"]["HasReservedConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ReservedConcurrency"}, ""]}]
    }
    assert props["ReservedConcurrentExecutions"] == {
        "Fn::If": [
            "HasReservedConcurrency",
            {"Ref": "ReservedConcurrency"},
            {"Ref": "AWS::NoValue"},
        ]
    }


def test_a_schedule_sweeps_every_minute_and_is_on_by_default(template: dict[str, Any]) -> None:
    """Lost pushes: an EventBridge schedule invokes the function with a "Scheduled Event",
    which the Lambda adapter runs as a sweep; one parameter turns it off."""
    events = function_of(template)["Properties"]["Events"]
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
    function = function_of(template)
    (name,) = [k for k, v in template["Resources"].items() if v is function]
    outputs = template["Outputs"]
    assert outputs["PushUrl"]["Value"] == {"Fn::GetAtt": [f"{name}Url", "FunctionUrl"]}
    assert "push settings" in outputs["PushUrl"]["Description"]
    assert outputs["FunctionArn"]["Value"] == {"Fn::GetAtt": [name, "Arn"]}
