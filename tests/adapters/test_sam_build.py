"""``sam build`` of template.yaml, with the real SAM CLI, packages this checkout.

The SAM CLI (``aws-sam-cli`` from the package index) lives in its own virtualenv,
``.venv-sam/`` at the repo root, made on the first run and reused after (CI installs it
once). The template's function is arm64 on CPython 3.12 and this machine need not be
either, which is the point: examples/aws_lambda/Makefile installs binary wheels for the
target platform, whatever Python runs the build. So:

- the template's own build is checked for what it holds: this checkout's ``emit_push``,
  the example module, every distribution the lambda extra requires (by the wheels'
  metadata, for Python 3.12 on Linux), and binaries for aarch64 CPython 3.12 only;
- the same Makefile, built through ``sam build`` for this machine's platform and Python
  (``LAMBDA_ARCH``/``LAMBDA_PYTHON``), is imported from the artefact alone (``python -S``:
  no site-packages) and its handler runs a pushed job against the local emit server.

Nothing but the package index is reached: SAM's telemetry and update check are off.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement

from tests.conftest import ADMIN_KEY, SPACE, WORKER_KEY, LiveServer
from tests.harnesses.events import build_event

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EXAMPLE = ROOT / "examples" / "aws_lambda"
SAM_VENV = ROOT / ".venv-sam"
SAM_CLI = "aws-sam-cli>=1.120,<2"
FUNCTION = "EmitPushFunction"
NO_NETWORK = (  # what pip says when it cannot reach the index
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "No matching distribution found for aws-sam-cli",
    "Could not fetch URL",
    "ConnectionError",
)


def _sam_installed() -> Path | None:
    sam = SAM_VENV / "bin" / "sam"
    if (SAM_VENV / ".installed").exists() and sam.exists():
        return sam
    return None


@pytest.fixture(scope="module")
def sam() -> Path:
    """The SAM CLI in .venv-sam/, installed there on the first run."""
    sam = _sam_installed()
    if sam is None:
        shutil.rmtree(SAM_VENV, ignore_errors=True)  # a half-made one: start again
        venv = [sys.executable, "-m", "venv", "--without-pip", str(SAM_VENV)]
        subprocess.run(venv, check=True, timeout=120)
        install = subprocess.run(  # with this venv's pip (a recent one), into that venv
            [sys.executable, "-m", "pip", "--python", str(SAM_VENV / "bin" / "python"),
             "install", "--quiet", "--disable-pip-version-check", SAM_CLI],
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        if install.returncode != 0:
            shutil.rmtree(SAM_VENV, ignore_errors=True)
            said = install.stdout + install.stderr
            if any(sign in said for sign in NO_NETWORK):
                pytest.skip(f"the SAM CLI could not be installed (no package index): {said[-300:]}")
            pytest.fail(f"pip install {SAM_CLI} failed:\n{said[-3000:]}")
        (SAM_VENV / ".installed").write_text(SAM_CLI + "\n")
        sam = SAM_VENV / "bin" / "sam"
    return sam


@pytest.fixture(scope="module")
def sam_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """SAM's environment: no telemetry, no update check (its config says it just checked),
    a region and dummy credentials so that nothing looks further."""
    app_dir = tmp_path_factory.mktemp("sam-config")
    metadata = {"telemetryEnabled": False, "lastVersionCheck": time.time() + 30 * 86400}
    (app_dir / "metadata.json").write_text(json.dumps(metadata))
    return {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "__SAM_CLI_APP_DIR": str(app_dir),
        "__SAM_CLI_TELEMETRY_ENDPOINT_URL": "http://127.0.0.1:9/metrics",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHON": sys.executable,  # the Makefile's pip: any Python 3.11+ with pip
    }


def sam_build(sam: Path, env: dict[str, str], where: Path, **make_vars: str) -> Path:
    """``sam build`` of the repo's template into ``where``; the function's artefact."""
    started = time.monotonic()
    build = subprocess.run(
        [str(sam), "build", "--template-file", str(TEMPLATE), "--build-dir", str(where / "build")],
        cwd=where, env={**env, **make_vars}, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert "Build Succeeded" in build.stdout + build.stderr
    print(f"sam build {make_vars or ''}: {time.monotonic() - started:.1f} s")
    return where / "build" / FUNCTION


@pytest.fixture(scope="module")
def built(sam: Path, sam_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template's own build: arm64, CPython 3.12."""
    return sam_build(sam, sam_env, tmp_path_factory.mktemp("sam-arm64"))


@pytest.fixture(scope="module")
def built_here(
    sam: Path, sam_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The same recipe for this machine: its architecture, its Python."""
    arch = {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine(), platform.machine())
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return sam_build(
        sam, sam_env, tmp_path_factory.mktemp("sam-here"), LAMBDA_ARCH=arch, LAMBDA_PYTHON=version
    )


# -- the template, as SAM reads it -----------------------------------------------------


def test_sam_validate_lint_passes_the_template(sam: Path, sam_env: dict[str, str]) -> None:
    run = subprocess.run(
        [str(sam), "validate", "--lint", "--template-file", str(TEMPLATE)],
        env=sam_env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "is a valid SAM Template" in run.stdout + run.stderr


def test_the_built_template_runs_the_artefact_with_the_example_handler(built: Path) -> None:
    built_template = built.parent / "template.yaml"
    function = yaml.safe_load(built_template.read_text())["Resources"][FUNCTION]["Properties"]
    assert function["CodeUri"] == FUNCTION
    assert function["Handler"] == "app.handler"
    assert (built / "app.py").read_bytes() == (EXAMPLE / "app.py").read_bytes()


# -- the template's build: arm64, CPython 3.12 -----------------------------------------


def dist_infos(artefact: Path) -> dict[str, Path]:
    return {_normal(path.name.split("-")[0]): path for path in artefact.glob("*.dist-info")}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def required(metadata: str, extras: set[str]) -> set[str]:
    """The distributions a METADATA file requires on Linux, CPython 3.12, with ``extras``."""
    found = set()
    for line in metadata.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        requirement = Requirement(line.partition(":")[2].strip())
        marker: Marker | None = requirement.marker
        target = {
            "python_version": "3.12", "python_full_version": "3.12.0",
            "sys_platform": "linux", "platform_system": "Linux",
            "platform_machine": "aarch64", "implementation_name": "cpython",
            "platform_python_implementation": "CPython", "os_name": "posix",
        }  # fmt: skip
        if marker is None or any(marker.evaluate({**target, "extra": e}) for e in extras | {""}):
            found.add(_normal(requirement.name))
    return found


def test_the_artefact_holds_this_checkout_and_everything_the_lambda_extra_needs(
    built: Path,
) -> None:
    infos = dist_infos(built)
    # This checkout's package, not a published one: the same version, the same files.
    version = re.search(r'__version__ = "([^"]+)"', (ROOT / "emit_push/_version.py").read_text())
    assert version is not None
    metadata = (infos["emit-push"] / "METADATA").read_text()
    assert f"\nVersion: {version.group(1)}\n" in metadata
    for module in ("__init__.py", "adapters/aws_lambda.py", "_framework/app.py"):
        assert (built / "emit_push" / module).read_bytes() == (
            ROOT / "emit_push" / module
        ).read_bytes()
    # Every distribution required, transitively, by emit-push[lambda], for the target.
    needed, todo = set(), [("emit-push", {"lambda"})]
    while todo:
        name, extras = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        assert name in infos, f"{name} is missing from the artefact"
        for dep in required((infos[name] / "METADATA").read_text(), extras):
            todo.append((dep, set()))
    assert {"mangum", "starlette", "pydantic", "pydantic-core", "httpx", "anyio"} <= needed
    assert set(infos) == needed  # nothing else: not boto3 (the runtime has it), no build tools
    assert not (built / "bin").exists()
    assert not list(built.rglob("__pycache__"))  # the build's Python compiles nothing


def test_the_artefacts_binaries_are_for_arm64_cpython_312(built: Path) -> None:
    binaries = sorted(p.relative_to(built).as_posix() for p in built.rglob("*.so"))
    assert any(b.startswith("pydantic_core/_pydantic_core.") for b in binaries), binaries
    assert binaries
    for binary in binaries:
        assert binary.endswith(".cpython-312-aarch64-linux-gnu.so"), binary
    wheel = (dist_infos(built)["pydantic-core"] / "WHEEL").read_text()
    tags = re.findall(r"^Tag: (.+)$", wheel, flags=re.M)
    assert tags
    assert all(re.fullmatch(r"cp312-cp312-manylinux[_0-9a-z]*_aarch64", tag) for tag in tags), tags


# -- the same recipe for this machine: imported from the artefact alone, and run -------


RUN_FROM_ARTEFACT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import app, emit_push, pydantic_core, mangum

class Context:
    def get_remaining_time_in_millis(self):
        return 30_000

answer = app.handler(json.load(sys.stdin), Context())
print(json.dumps({
    "answer": answer,
    "files": [m.__file__ for m in (app, emit_push, pydantic_core, mangum)],
    "site": [p for p in sys.path if "site-packages" in p],
}))
"""


def test_the_artefact_built_for_this_machine_imports_alone_and_runs_a_job(
    built_here: Path, live_server: LiveServer
) -> None:
    with httpx.Client(base_url=live_server.base_url, headers={"x-api-key": ADMIN_KEY}) as admin:
        job_id = admin.post(
            f"/spaces/{SPACE}/jobs",
            json={"name": "thumbnail", "payload": {"image_url": "s3://cat.png", "sizes": [64]}},
        ).json()["id"]
        push = {"type": "job.pending", "jobId": job_id, "name": "thumbnail"}
        event = build_event("lambda_function_url", push, {"authorization": "Bearer sam-secret"})
        env = {
            "PATH": os.environ.get("PATH", ""),
            "EMIT_SPACE_ID": SPACE,
            "EMIT_API_KEY": WORKER_KEY,
            "EMIT_PUSH_SECRET": "sam-secret",
            "EMIT_BASE_URL": live_server.base_url,
        }
        run = subprocess.run(
            [sys.executable, "-S", "-c", RUN_FROM_ARTEFACT, str(built_here)],
            input=json.dumps(event), cwd=built_here.parent, env=env,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        out: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
        assert out["site"] == []  # no site-packages: the artefact alone
        assert all(f.startswith(str(built_here) + os.sep) for f in out["files"]), out["files"]
        assert out["answer"]["statusCode"] == 200
        assert json.loads(out["answer"]["body"])["status"] == "completed"
        job = admin.get(f"/jobs/{job_id}").json()
    assert job["status"] == "completed"
    assert job["result"] == {"thumbnails": ["s3://cat.png@64"]}
