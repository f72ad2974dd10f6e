"""The ``emit-push`` command line itself: ``--version``, help for everything, exit codes."""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Iterator

import pytest

from emit_push import __version__
from emit_push.cli import main
from emit_push.cli.common import EXIT_FAILURE, EXIT_USAGE, CliError, UsageError
from emit_push.cli.main import _parser
from tests.cli.processes import EMIT


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_the_version_and_exits_0(flag: str) -> None:
    result = subprocess.run([*EMIT, flag], capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"emit-push {__version__}\n",
        "",
    )


def parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ("emit-push",)
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser of the command, with the words that reach it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from parsers(child, (*path, name))


def test_every_command_has_a_description_and_every_flag_help() -> None:
    found = list(parsers(_parser()))
    assert len(found) == 12  # emit-push, its 6 commands, the 5 actions of `jobs`
    missing = []
    for path, parser in found:
        if not (parser.description or "").strip():
            missing.append(f"{' '.join(path)}: no description")
        for action in parser._actions:
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                missing.append(f"{' '.join(path)} {action.option_strings or action.dest}")
            if isinstance(action, argparse._SubParsersAction):
                missing += [
                    f"{' '.join(path)} {choice.dest}: no help in the list"
                    for choice in action._choices_actions
                    if not (choice.help or "").strip()
                ]
    assert missing == []


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    epilog = out[out.index("exit status:") :]
    for code, meaning in [("0", "done"), ("1", "failed"), ("2", "usage")]:
        assert f"\n  {code}    {meaning}" in epilog, epilog
    assert "a job that ended dead or killed" in epilog
    assert "pip install 'emit-push[server]'" in epilog


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["nope"], "invalid choice: 'nope'"),
        (["jobs"], "the following arguments are required: ACTION"),
        (["jobs", "create"], "the following arguments are required: NAME"),
        (["jobs", "list", "--limit", "many"], "argument --limit: invalid int value: 'many'"),
        (["jobs", "create", "x", "--quiet", "--json"], "argument --json: not allowed with"),
        (["server", "--log-level", "loud"], "'loud' is not a log level (choose from critical"),
        (["worker", "app.py", "--count", "two"], "argument --count: invalid int value"),
    ],
)
def test_argparse_usage_errors_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("usage: emit-push")
    assert message in err, err


def test_a_bad_log_level_from_the_environment_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EMIT_SERVER_LOG_LEVEL", "LOUD")
    with pytest.raises(SystemExit) as exited:
        main(["server"])
    assert exited.value.code == EXIT_USAGE
    assert "'LOUD' is not a log level" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["watch"], "name a job to watch, or pass --space (not both)"),
        (["watch", "01JNOSUCHJOB", "--space"], "name a job to watch, or pass --space (not both)"),
        (["jobs", "create", "x", "--payload", "{nope"], "--payload is not JSON"),
        (
            ["jobs", "create", "x", "--payload", "@/no/such/file"],
            "--payload @/no/such/file: No such file",
        ),
        (
            ["server", "--db", ":memory:", "--rate-limit", "0"],
            "--rate-limit must be greater than 0",
        ),
        (["worker", "app.py", "--count", "0"], "--count must be between 1 and 50, got 0"),
    ],
)
def test_bad_flag_values_exit_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.err.startswith(f"emit-push: {message}"), captured.err
    assert len(captured.err.splitlines()) == 1
    assert captured.out == ""


def test_missing_settings_exit_2_and_an_unreachable_server_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("EMIT_BASE_URL", "EMIT_SPACE_ID", "EMIT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["jobs", "list"]) == EXIT_USAGE
    assert "EMIT_SPACE_ID" in capsys.readouterr().err
    dead = ["--base-url", "http://127.0.0.1:9/api/v1", "--space-id", "s", "--api-key", "k"]
    assert main(["jobs", "list", "--json", *dead]) == EXIT_FAILURE
    captured = capsys.readouterr()
    assert captured.err.startswith("emit-push: cannot reach http://127.0.0.1:9/api/v1")
    assert captured.out == ""  # --json: nothing on standard output but the document


def test_errors_carry_their_exit_code() -> None:
    assert (CliError("x").code, UsageError("x").code) == (EXIT_FAILURE, EXIT_USAGE)
    assert CliError("x", code=EXIT_USAGE).code == EXIT_USAGE
    assert isinstance(UsageError("x"), CliError)
    assert str(UsageError("--count must be 1")) == "--count must be 1"
