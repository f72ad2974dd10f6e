"""Each extra brings everything its part imports: a Lambda built from `emit-push[lambda]`
(what examples/aws_lambda/Makefile installs for sam build) can import the Lambda adapter."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
LOADED = """
import sys
before = set(sys.modules)
import {module}
print(__import__("json").dumps(sorted({{m.split(".")[0] for m in set(sys.modules) - before}})))
"""


def requirement_names(extra: str | None) -> set[str]:
    project = PYPROJECT["project"]
    wanted = list(project["dependencies"])
    if extra is not None:
        wanted += project["optional-dependencies"][extra]
    return {
        re.split(r"[<>=\[ ;]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in wanted
    }


def distributions_behind(module: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", LOADED.format(module=module)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    tops = json.loads(out.stdout)
    mapping = packages_distributions()
    found = set()
    for top in tops:
        for dist in mapping.get(top, []):
            found.add(dist.lower().replace("_", "-"))
    found.discard("emit-push")
    # httpx imports its command line's extras when they happen to be installed, and
    # does without them otherwise: optional, not needed.
    return found - {"rich", "pygments", "click", "markdown-it-py", "mdurl"}


def closure(names: set[str]) -> set[str]:
    """The distributions these require, transitively (from the installed metadata)."""
    from importlib.metadata import PackageNotFoundError, requires

    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            specs = requires(name) or []
        except PackageNotFoundError:
            continue
        for spec in specs:
            if "extra ==" in spec:
                continue
            todo.append(re.split(r"[<>=!~\[ ;(]", spec, maxsplit=1)[0].lower().replace("_", "-"))
    return seen


@pytest.mark.parametrize(
    ("module", "extra"),
    [
        ("emit_push.adapters.aws_lambda", "lambda"),
        ("emit_push.adapters.gcp_functions", "gcp"),
        ("emit_push.adapters.asgi", "server"),
        ("emit_push.server", "server"),
        ("emit_push", None),
    ],
)
def test_an_extra_covers_what_its_part_imports(module: str, extra: str | None) -> None:
    needed = distributions_behind(module)
    provided = closure(requirement_names(extra))
    assert needed <= provided, f"{module} needs {sorted(needed - provided)} beyond {extra!r}"
