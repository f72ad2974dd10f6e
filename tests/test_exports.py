"""The public surface: a sorted ``__all__`` of exactly the public names, and a light import."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
import types
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import emit_push


def test_all_is_sorted_and_names_every_public_member() -> None:
    public = sorted(
        name
        for name in dir(emit_push)
        if not name.startswith("_")
        and name != "annotations"  # left by `from __future__ import annotations`
        # submodules: those other tests imported (cli), and the package's own imports
        and not isinstance(getattr(emit_push, name), types.ModuleType)
    )
    assert emit_push.__all__ == sorted(emit_push.__all__)
    assert sorted(set(emit_push.__all__) - {"__version__"}) == public
    assert "__version__" in emit_push.__all__


def _attribute_docstrings(module: types.ModuleType) -> dict[str, str]:
    """The string after each module-level assignment: how a constant or an alias is
    documented (its value's own ``__doc__`` is its type's, or none)."""
    body = ast.parse(inspect.getsource(module)).body
    documented = {}
    for assignment, after in zip(body, body[1:], strict=False):
        if isinstance(assignment, ast.Assign):
            targets = assignment.targets
        elif isinstance(assignment, ast.AnnAssign):
            targets = [assignment.target]
        else:
            continue
        if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
            text = after.value.value
            documented |= {t.id: text for t in targets if isinstance(t, ast.Name) and text}
    return documented


def test_every_export_is_documented() -> None:
    for name in emit_push.__all__:
        value = getattr(emit_push, name)
        if inspect.isclass(value) or inspect.isroutine(value):
            assert value.__doc__, name
        elif name != "__version__":  # a constant (ANY_NAME) or a type alias (Middleware)
            module = sys.modules[f"emit_push{emit_push._SOURCE[name]}"]
            assert _attribute_docstrings(module).get(name), name


def test_the_catch_all_name_and_the_middleware_type_are_exported() -> None:
    from emit_push import ANY_NAME, EmitPush, Job, Middleware
    from emit_push._framework import execution

    assert ANY_NAME == "*"
    assert Middleware is execution.Middleware
    app = EmitPush(space_id="s", api_key="k", push_secret=None)

    async def timed(job: Job, call_next: Callable[[], Awaitable[Any]]) -> Any:
        return await call_next()

    middleware: Middleware = timed
    assert app.middleware(middleware) is timed

    @app.on_job(ANY_NAME)
    async def everything(job: Job) -> None: ...

    assert app.runner.handler_for("anything").name == ANY_NAME  # type: ignore[union-attr]


def _type_checking_imports() -> dict[str, str]:
    """What type checkers read: each name imported under ``TYPE_CHECKING``, and its module."""
    tree = ast.parse(inspect.getsource(emit_push))
    block = next(node for node in tree.body if isinstance(node, ast.If))
    return {
        alias.name: f".{node.module}"
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def test_every_export_resolves_to_the_object_type_checkers_see() -> None:
    # The lazy loader (emit_push._SOURCE) and the TYPE_CHECKING imports name the same
    # modules, so IDEs and mypy see exactly what `from emit_push import X` gives.
    seen = _type_checking_imports()
    assert sorted(seen) == sorted(set(emit_push.__all__) - {"__version__"})
    for name, module in seen.items():
        value = getattr(emit_push, name)
        assert value is getattr(sys.modules[f"emit_push{module}"], name), name
        assert name in vars(emit_push), name  # cached: the next lookup is a plain global


def test_unknown_names_are_attribute_and_import_errors() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        emit_push.Nope  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(ImportError):
        from emit_push import Nope  # type: ignore[attr-defined]  # noqa: F401


def _loaded_by(code: str) -> list[str]:
    script = f"import sys\nbefore = set(sys.modules)\n{code}\n" + (
        "import json\nprint(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    loaded: list[str] = json.loads(out)
    return loaded


def test_importing_the_package_loads_no_server_or_platform_code() -> None:
    loaded = _loaded_by("import emit_push")
    heavy = ("starlette", "uvicorn", "mangum", "flask", "functions_framework")
    assert [m for m in loaded if m.split(".")[0] in heavy or m.startswith("emit_push.server")] == []


def test_importing_the_package_loads_none_of_its_modules_nor_its_dependencies() -> None:
    # Names are imported on first use: the package alone is its version.
    loaded = _loaded_by("import emit_push")
    assert [m for m in loaded if m.startswith("emit_push")] == ["emit_push", "emit_push._version"]
    assert [m for m in loaded if m.split(".")[0] in ("httpx", "pydantic", "anyio")] == []


def test_an_exception_alone_loads_neither_the_client_nor_httpx() -> None:
    loaded = _loaded_by("from emit_push import EmitError, ConfigurationError")
    assert "emit_push._exceptions" in loaded
    assert [m for m in loaded if m.split(".")[0] == "httpx" or m == "emit_push._client"] == []
