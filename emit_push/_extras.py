"""Optional dependencies: a missing one is named in one line, with the extra to install.

``pip install emit-push`` installs the SDK and the framework; each platform's code comes
with an extra (``pyproject.toml``, ``[project.optional-dependencies]``). Wrap the imports
of an entry point that needs an extra in ``requires``; a module of that extra missing
becomes a ``MissingExtraError`` that says what to install, instead of a traceback that
ends in ``ModuleNotFoundError``::

    with requires("lambda", "lambda_handler()"):
        from mangum import Mangum

    # emit-push: lambda_handler() needs mangum, which is not installed:
    #     pip install 'emit-push[lambda]'             (one line)

Any other missing module (a broken install of something else) goes through unchanged.
Guards nest: the outermost that names the module's extra says what needed it, so an
entry point may wrap a module that guards its own imports.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

from ._exceptions import EmitError

__all__ = ["EXTRAS", "Extra", "MissingExtraError", "requires"]

Extra = Literal["server", "lambda", "gcp", "otel"]
"""The extras of ``pyproject.toml`` that entry points need (``dev`` is for this repo)."""

EXTRAS: dict[Extra, tuple[str, ...]] = {
    "server": ("starlette", "uvicorn", "rich"),
    "lambda": ("mangum", "starlette"),
    "gcp": ("functions_framework", "flask"),  # functions-framework serves Flask
    "otel": ("opentelemetry",),
}
"""The top-level modules each extra installs (``tests/test_extras.py`` holds this to
``pyproject.toml``)."""


class MissingExtraError(EmitError, ImportError):
    """An entry point needs a module of an extra that is not installed.

    The message is one line that names the command to run; ``name`` is the missing module
    (as on ``ModuleNotFoundError``), ``extra`` the extra that installs it, ``needed_by``
    what needed it. Also an ``ImportError``: ``except ImportError`` still catches it.

        try:
            asgi = app.asgi()
        except MissingExtraError as exc:
            print(exc)  # emit-push: app.asgi() needs starlette, which is not installed: ...
    """

    def __init__(self, module: str, extra: Extra, needed_by: str) -> None:
        super().__init__(
            f"emit-push: {needed_by} needs {module}, which is not installed:"
            f" pip install 'emit-push[{extra}]'"
        )
        self.name = module
        self.extra = extra
        self.needed_by = needed_by


@contextlib.contextmanager
def requires(extra: Extra, needed_by: str) -> Iterator[None]:
    """Imports inside need ``extra``: a module of it missing raises ``MissingExtraError``.

    ``needed_by`` is what the user called or imported, as they wrote it (``app.asgi()``,
    ``emit-push server``). The error is raised ``from None``: its one line is the whole
    story.

        with requires("server", "app.asgi()"):
            from starlette.applications import Starlette
    """
    modules = EXTRAS[extra]
    try:
        yield
    except MissingExtraError as exc:  # a nested guard's: say what the caller called
        if exc.name not in modules:
            raise
        raise MissingExtraError(exc.name, extra, needed_by) from None
    except ModuleNotFoundError as exc:
        module = (exc.name or "").partition(".")[0]
        if module not in modules:
            raise
        raise MissingExtraError(module, extra, needed_by) from None
