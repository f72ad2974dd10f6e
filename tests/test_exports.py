"""The public surface: a sorted ``__all__`` of exactly the public names, and a light import."""

from __future__ import annotations

import subprocess
import sys
import types

import emit_push


def test_all_is_sorted_and_names_every_public_member() -> None:
    public = sorted(
        name
        for name, value in vars(emit_push).items()
        if not name.startswith("_")
        and name != "annotations"  # left by `from __future__ import annotations`
        and not isinstance(value, types.ModuleType)  # submodules other tests imported (cli)
    )
    assert emit_push.__all__ == sorted(emit_push.__all__)
    assert sorted(set(emit_push.__all__) - {"__version__"}) == public
    assert "__version__" in emit_push.__all__


def test_every_export_is_documented() -> None:
    for name in emit_push.__all__:
        if name != "__version__":
            assert getattr(emit_push, name).__doc__, name


def test_importing_the_package_loads_no_server_or_platform_code() -> None:
    code = (
        "import emit_push, sys; "
        "heavy = ('starlette', 'uvicorn', 'mangum', 'flask', 'functions_framework'); "
        "print([m for m in sys.modules if m.split('.')[0] in heavy "
        "or m.startswith('emit_push.server')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
