"""``emit-push`` on a bare install (no ``server`` extra): one line naming the extra."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.cli.helpers import NO_SETTINGS

# A bare `pip install emit-push`, as the command sees it: rich, starlette and uvicorn
# cannot be imported (the finder refuses them before any real one is asked).
BARE = textwrap.dedent(
    """
    import sys

    class NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in {"rich", "starlette", "uvicorn"}:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NotInstalled())
    sys.argv[0] = "emit-push"
    from emit_push.cli import main

    sys.exit(main(sys.argv[1:]))
    """
)


def bare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BARE, *args], capture_output=True, text=True, timeout=30,
        env={**os.environ, **NO_SETTINGS},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "module"),
    [
        (["server", "--port", "0", "--db", ":memory:"], "starlette"),
        (["dev", "app.py", "--port", "0", "--server-port", "0"], "starlette"),
        (["demo"], "starlette"),
        (["watch", "01JNOSUCHJOB"], "rich"),
        (["watch", "--space"], "rich"),
    ],
)
def test_a_command_without_its_extra_names_it_and_exits_1(args: list[str], module: str) -> None:
    result = bare(*args)
    assert (result.returncode, result.stderr, result.stdout) == (
        1,
        f"emit-push: emit-push {args[0]} needs {module}, which is not installed:"
        " pip install 'emit-push[server]'\n",
        "",
    )


@pytest.mark.parametrize("args", [["--help"], ["jobs", "create", "--help"], ["--version"]])
def test_help_and_the_client_commands_need_no_extra(args: list[str]) -> None:
    result = bare(*args)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith(("usage: emit-push", "emit-push "))


def test_jobs_need_no_extra() -> None:
    result = bare("jobs", "list", "--json")  # no settings: said, with no traceback
    assert result.returncode == 2
    assert result.stderr.startswith("emit-push: EmitClient needs space_id=")
