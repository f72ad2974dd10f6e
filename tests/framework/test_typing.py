"""``on_job`` takes handlers of one job and a serialisable result: mypy --strict rejects
the others, and registration refuses them with the handler's name and what is wrong."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from emit_push import AsyncClaimedJob, ClaimedJob, ConfigurationError, EmitPush, Job, SyncJob


class Resize(BaseModel):
    url: str
    width: int


def _app() -> EmitPush:
    return EmitPush(space_id="s", api_key="k", push_secret=None)


# -- at run time ------------------------------------------------------------------------


def test_a_handler_whose_job_is_annotated_otherwise_is_refused() -> None:
    app = _app()
    with pytest.raises(ConfigurationError) as caught:

        @app.on_job("resize")
        async def wrong(job: int) -> None: ...  # type: ignore[type-var]

    assert re.fullmatch(
        rf"resize: the handler async def wrong \({__name__}, line \d+\) annotates its job as "
        r"int; an async def handler receives Job \(Job\[Model\] for a typed payload\)",
        str(caught.value),
    )
    with pytest.raises(
        ConfigurationError,
        match=r"def sync_dict \(.*\) annotates its job as dict\[str, Any\]; a def handler receives SyncJob ",
    ):

        @app.on_job("dict")
        def sync_dict(job: dict[str, Any]) -> None: ...  # type: ignore[type-var]

    assert app.handlers == {}


def test_a_job_of_the_other_kind_is_refused_typed_or_bare() -> None:
    app = _app()
    with pytest.raises(
        ConfigurationError,
        match=r"^b: the handler async def b \(.*\) is annotated SyncJob\[Resize\], but an async "
        r"def handler receives Job, not SyncJob$",
    ):

        @app.on_job("b")
        async def b(job: SyncJob[Resize]) -> None: ...  # type: ignore[type-var]

    with pytest.raises(ConfigurationError, match=r"def c \(.*\) is annotated Job, but a def handler receives SyncJob, not Job$"):  # fmt: skip

        @app.on_job("c")
        def c(job: Job) -> None: ...  # type: ignore[type-var]

    # An annotation that cannot be resolved still says which kind of job it names.
    with pytest.raises(ConfigurationError, match="receives Job, not SyncJob"):

        @app.on_job("d")
        async def d(job: SyncJob[NoSuchModel]) -> None: ...  # type: ignore[name-defined,type-var]  # noqa: F821

    assert app.handlers == {}


def test_a_handler_that_cannot_be_called_with_the_job_alone_is_refused() -> None:
    app = _app()
    with pytest.raises(
        ConfigurationError,
        match=r"^two: the handler async def two \(.*\) is called with the job alone, but also "
        r"needs other, flag: async def handler\(job: Job\[Model\]\)$",
    ):

        @app.on_job("two")
        async def two(job: Job, other: int, *, flag: bool) -> None: ...  # type: ignore[type-var]

    with pytest.raises(
        ConfigurationError, match=r"def none \(.*\) must take the job as its first positional"
    ):

        @app.on_job("none")
        def none() -> None: ...  # type: ignore[type-var]

    with pytest.raises(
        ConfigurationError, match=r"def keyword \(.*\) must take the job as its first"
    ):

        @app.on_job("keyword")
        async def keyword(*, job: Job) -> None: ...  # type: ignore[type-var]

    assert app.handlers == {}


def test_handlers_that_take_the_job_are_accepted() -> None:
    app = _app()

    @app.on_job("typed")
    async def typed(job: Job[Resize]) -> dict[str, int]:
        return {"width": job.payload.width}

    @app.on_job("defaults")
    def defaults(job: SyncJob[Resize], retries: int = 3, *rest: Any, **more: Any) -> None: ...

    @app.on_job("bare")
    async def bare(job: Job) -> None: ...

    @app.on_job("untyped")
    def untyped(job):  # type: ignore[no-untyped-def]
        return None

    @app.on_job("wider")
    async def wider(job: AsyncClaimedJob[Resize]) -> None: ...

    @app.on_job("wider-sync")
    def wider_sync(job: ClaimedJob[Any] | None) -> None: ...

    @app.on_job("anything")
    async def anything(job: Any) -> None: ...

    def two(prefix: str, job: SyncJob[Resize]) -> str:
        return prefix

    app.on_job("partial")(functools.partial(two, "p"))
    assert sorted(app.handlers) == [
        "anything", "bare", "defaults", "partial", "typed", "untyped", "wider", "wider-sync",
    ]  # fmt: skip
    typed_payload = {n: h.payload is not None for n, h in app.handlers.items()}
    assert typed_payload == {
        "typed": True, "defaults": True, "bare": False, "untyped": False, "wider": True,
        "wider-sync": False, "anything": False, "partial": True,
    }  # fmt: skip


# -- for mypy --strict --------------------------------------------------------------------

GOOD = """
from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Coroutine
from typing import Any, TypedDict

from pydantic import BaseModel

from emit_push import EmitPush, Job, SyncJob, on_job

app = EmitPush()


class Resize(BaseModel):
    url: str


@dataclasses.dataclass
class Done:
    ok: bool


class Counts(TypedDict):
    done: int


class Colour(enum.Enum):
    RED = 1


@app.on_job("resize")
async def resize(job: Job[Resize]) -> dict[str, str]:
    return {"url": job.payload.url}


@app.on_job("model")
def model(job: SyncJob[Resize]) -> Resize:
    return job.payload


@app.on_job("bare")
async def bare(job: Job) -> None:  # Job is Job[Any]
    job.payload.anything  # the payload is Any


@app.on_job("explicit-any")
def explicit_any(job: SyncJob[Any]) -> Done:
    return Done(ok=True)


@app.on_job("typed-dict")
async def typed_dict(job: Job[int]) -> Counts:
    return {"done": job.payload}


@app.on_job("many")
def many(job: SyncJob[int]) -> list[tuple[int, datetime.date, Colour]]:
    return []


@app.on_job("default-param")
async def default_param(job: Job[int], retries: int = 3) -> int:
    return retries


@on_job("module-level")
def module_level(job: SyncJob[list[int]]) -> int:
    return sum(job.payload)


def still_a_coroutine_function(job: Job[Resize]) -> Coroutine[Any, Any, dict[str, str]]:
    return resize(job)  # the decorator kept the function's own type
"""

BAD = """
from __future__ import annotations

import socket
from collections.abc import Coroutine
from typing import Any

from emit_push import EmitPush, Job, SyncJob

app = EmitPush()


async def later() -> None: ...


@app.on_job("int")  # E
async def wrong(job: int) -> None: ...


@app.on_job("two")  # E
async def two(job: Job, other: int) -> None: ...


@app.on_job("def-with-job")  # E
def def_with_job(job: Job) -> None: ...


@app.on_job("async-with-syncjob")  # E
async def async_with_syncjob(job: SyncJob) -> None: ...


@app.on_job("none")  # E
async def no_job() -> None: ...


@app.on_job("socket")  # E
def returns_a_socket(job: SyncJob) -> socket.socket:
    return socket.socket()


@app.on_job("object")  # E
def returns_an_object(job: SyncJob) -> object:
    return object()


@app.on_job("awaitable")  # E
def returns_a_coroutine(job: SyncJob[int]) -> Coroutine[Any, Any, None]:
    return later()
"""


@pytest.mark.slow
def test_mypy_strict_rejects_the_wrong_handlers_and_accepts_the_right_ones(
    tmp_path: Path,
) -> None:
    (tmp_path / "good.py").write_text(textwrap.dedent(GOOD))
    (tmp_path / "bad.py").write_text(textwrap.dedent(BAD))
    (tmp_path / "mypy.ini").write_text("[mypy]\nstrict = True\npython_version = 3.11\n")
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--cache-dir", ".cache"]
        + ["--no-error-summary", "good.py", "bad.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    errors = re.findall(r"^(\w+)\.py:(\d+): error: (.*)$", run.stdout, flags=re.M)
    expected = [
        number for number, line in enumerate(BAD.splitlines(), start=1) if line.endswith("# E")
    ]
    assert [int(line) for file, line, _ in errors if file == "bad"] == expected, run.stdout
    assert [e for e in errors if e[0] != "bad"] == [], run.stdout
    assert all('type variable "JobHandler"' in message for _, _, message in errors)
    assert 'cannot be "Callable[[int], Coroutine[Any, Any, None]]"' in run.stdout
    assert 'cannot be "Callable[[Job[Any]], None]"' in run.stdout  # a def given Job
    assert 'cannot be "Callable[[SyncJob[Any]], Coroutine[Any, Any, None]]"' in run.stdout
    assert run.returncode == 1
