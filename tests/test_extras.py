"""Extras that explain themselves: an entry point whose extra is missing says, in one line,
what to install. Absence is simulated in a fresh interpreter whose import system refuses
the extra's modules, as an install without them would."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import emit_push
from emit_push import ConfigurationError, EmitError, MissingExtraError
from emit_push._extras import EXTRAS, requires

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

ABSENT = """
import sys

class Absent:  # the import system as it is without these distributions installed
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Absent())
"""


def run_without(blocked: set[str], code: str) -> subprocess.CompletedProcess[str]:
    script = ABSENT.format(blocked=sorted(blocked)) + code
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )


def message(needed_by: str, module: str, extra: str) -> str:
    return f"emit-push: {needed_by} needs {module}, which is not installed: pip install 'emit-push[{extra}]'"


@pytest.mark.parametrize(
    ("blocked", "code", "expected"),
    [
        (
            {"starlette"},
            "from emit_push import EmitPush\nEmitPush().asgi()",
            message("app.asgi()", "starlette", "server"),
        ),
        (
            {"starlette"},
            "import emit_push.adapters.asgi",
            message("emit_push.adapters.asgi", "starlette", "server"),
        ),
        (
            {"starlette"},
            "import emit_push.server",
            message("emit_push.server (the local emit server)", "starlette", "server"),
        ),
        (
            {"starlette"},
            "from emit_push.testing import LocalEmit",
            message("LocalEmit", "starlette", "server"),
        ),
        (
            {"starlette"},
            "from emit_push.testing import SyncLocalEmit",
            message("SyncLocalEmit", "starlette", "server"),
        ),
        (
            {"flask", "functions_framework"},
            "from emit_push import EmitPush\n"
            "from emit_push.adapters.gcp_functions import http_function\n"
            "http_function(EmitPush())",
            message("http_function()", "flask", "gcp"),
        ),
    ],
)
def test_a_missing_extra_is_one_line_naming_what_to_install(
    blocked: set[str], code: str, expected: str
) -> None:
    result = run_without(blocked, code)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == f"emit_push._extras.MissingExtraError: {expected}"
    # No chained ModuleNotFoundError ("During handling of the above exception..."): the
    # one line is the whole story.
    assert "ModuleNotFoundError" not in result.stderr
    assert "During handling" not in result.stderr
    assert result.stderr.count("pip install") == 1


def test_the_error_is_an_import_error_naming_the_module_and_the_extra() -> None:
    code = """
from emit_push import EmitError, EmitPush, MissingExtraError
try:
    EmitPush().asgi()
except ImportError as exc:  # code that guards an optional import keeps working
    assert isinstance(exc, MissingExtraError) and isinstance(exc, EmitError)
    assert exc.__cause__ is None and exc.__suppress_context__
    print(exc.name, exc.extra, exc.needed_by, sep="|")
"""
    result = run_without({"starlette"}, code)
    assert (result.returncode, result.stdout) == (0, "starlette|server|app.asgi()\n"), result.stderr


def test_what_needs_no_extra_works_without_any() -> None:
    code = """
from emit_push import EmitPush, Job
from emit_push.testing import run_handler_sync
app = EmitPush()

@app.on_job("resize")
async def resize(job: Job) -> dict:
    return {"ok": job.payload["width"]}

print(run_handler_sync(app, "resize", {"width": 64}).result)
"""
    every = {module for modules in EXTRAS.values() for module in modules}
    result = run_without(every, code)
    assert (result.returncode, result.stdout) == (0, "{'ok': 64}\n"), result.stderr


# -- the helper -------------------------------------------------------------------------


def test_a_missing_module_of_the_extra_becomes_the_one_line_error() -> None:
    with pytest.raises(MissingExtraError) as caught, requires("server", "emit-push server"):
        raise ModuleNotFoundError("No module named 'uvicorn.config'", name="uvicorn.config")
    assert str(caught.value) == message("emit-push server", "uvicorn", "server")
    assert (caught.value.name, caught.value.extra) == ("uvicorn", "server")


def test_another_missing_module_goes_through_unchanged() -> None:
    # A broken install of something else is not a missing extra: its own error says more.
    with pytest.raises(ModuleNotFoundError) as caught, requires("server", "emit-push server"):
        raise ModuleNotFoundError("No module named 'h11'", name="h11")
    assert type(caught.value) is ModuleNotFoundError
    with (
        pytest.raises(MissingExtraError) as relabelled,
        requires("gcp", "http_function()"),
        requires("otel", "tracing"),
    ):
        raise ModuleNotFoundError("No module named 'opentelemetry'", name="opentelemetry")
    assert relabelled.value.extra == "otel"  # not a module of the outer extra: kept


def test_the_outermost_guard_says_what_the_caller_called() -> None:
    # lambda_handler() may import a module whose own guard names the server extra.
    with (
        pytest.raises(MissingExtraError) as caught,
        requires("lambda", "lambda_handler()"),
        requires("server", "emit_push.adapters.asgi"),
    ):
        raise ModuleNotFoundError("No module named 'starlette'", name="starlette")
    assert str(caught.value) == message("lambda_handler()", "starlette", "lambda")


def test_it_is_public_and_in_the_error_tree_but_not_a_settings_error() -> None:
    assert emit_push.MissingExtraError is MissingExtraError
    assert issubclass(MissingExtraError, EmitError)
    assert issubclass(MissingExtraError, ImportError)
    # The CLI adds "(or pass --space-id / --api-key / --base-url)" to settings errors.
    assert not issubclass(MissingExtraError, ConfigurationError)


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match is not None, requirement
    return re.sub(r"[-_.]+", "-", match.group()).lower()


def test_the_table_of_extras_is_pyprojects() -> None:
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    assert set(EXTRAS) == set(declared) - {"dev"}
    providers = importlib.metadata.packages_distributions()  # module -> distributions
    for extra, modules in EXTRAS.items():
        wanted = {_name(requirement) for requirement in declared[extra]}
        provided = {m: {_name(d) for d in providers[m]} for m in modules}
        # Each distribution of the extra brings a module named here...
        for name in wanted:
            assert any(name in dists for dists in provided.values()), (extra, name)
        # ...and each module named here comes with the extra (or with what it requires).
        brought = wanted | {
            _name(dependency)
            for name in wanted
            for dependency in importlib.metadata.requires(name) or []
            if "extra ==" not in dependency
        }
        for module, dists in provided.items():
            assert dists & brought, (extra, module)
