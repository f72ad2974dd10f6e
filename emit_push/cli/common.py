"""What the ``emit-push`` commands share: one-line errors, client settings, app loading."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import re
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._exceptions import RealtimeError
    from .._framework.app import EmitPush

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "UsageError",
    "add_client_flags",
    "api_url",
    "app_folder",
    "base_url_hint",
    "client_settings",
    "continued",
    "describe_error",
    "explained",
    "first_line",
    "load_app",
    "not_found",
    "require_extra",
    "show_job_lines",
    "stream_error",
    "unreachable",
]

EXIT_OK = 0
EXIT_FAILURE = 1
"""A job that did not complete, a refused call, an app that would not load, the environment."""
EXIT_USAGE = 2
"""What the command was given: argparse's errors, a bad flag value, missing settings."""


class CliError(Exception):
    """A one-line error for the user, with the fix when it is known; the command then
    exits ``code`` (``EXIT_FAILURE`` unless said)."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


class UsageError(CliError):
    """A ``CliError`` about the command line itself: a flag value or settings to fix
    (exit ``EXIT_USAGE``, as argparse's own errors)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


def require_extra(command: str, modules: tuple[str, ...]) -> None:
    """``MissingExtraError`` (one line: the module, and ``pip install
    'emit-push[server]'``) when one of ``modules`` of the server extra is not installed.

    Imported here, before the command starts anything, so that a bare ``pip install
    emit-push`` meets one line with the fix rather than a traceback halfway through.
    """
    from .._extras import requires

    with requires("server", f"emit-push {command}"):
        for name in modules:
            importlib.import_module(name)


def add_client_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("emit.run settings (default: the environment)")
    group.add_argument("--base-url", metavar="URL", help="API base URL (EMIT_BASE_URL)")
    group.add_argument("--space-id", metavar="ID", help="the space (EMIT_SPACE_ID)")
    group.add_argument("--api-key", metavar="KEY", help="an API key (EMIT_API_KEY)")


def client_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "base_url": getattr(args, "base_url", None),
        "space_id": getattr(args, "space_id", None),
        "api_key": getattr(args, "api_key", None),
    }


API_SUFFIX = "/api/v1"


def api_url(base_url: str | None = None) -> str:
    """The API base URL a command talks to: the flag's, else the environment's."""
    from .._sdk.settings import DEFAULT_BASE_URL

    return (base_url or os.environ.get("EMIT_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


def unreachable(base_url: str | None, detail: str) -> str:
    """The line for a server that does not answer, with the fix."""
    return (
        f"cannot reach {api_url(base_url)}: {detail}. Is the server running? Start it with"
        " `emit-push server`, or point EMIT_BASE_URL at it"
    )


def base_url_hint(
    base_url: str | None, job_id: str | None = None, code: str | None = None
) -> str | None:
    """For a 404: the fix when the base URL is its likelier cause, else None (the job
    named is what is unknown).

    A base URL without ``/api/v1`` answers 404 for every path. A space-level call (no
    ``job_id``: poll, list, create) meets a 404 only then; a job's call when the answer
    is not the contract's ``job_not_found`` (or, from a server that gives no code, when
    the URL does not end in ``/api/v1``). Every command that can meet such a 404
    (``jobs``, ``watch``, ``worker``, ``dev``) asks here.
    """
    url = api_url(base_url)
    if job_id is not None and (
        code == "job_not_found" or (code is None and url.endswith(API_SUFFIX))
    ):
        return None
    if url.endswith(API_SUFFIX):  # there, but something else answers at that path
        return f"check EMIT_BASE_URL (it is {url}): it has no emit.run API"
    return f"check that EMIT_BASE_URL ends in {API_SUFFIX} (it is {url})"


def not_found(base_url: str | None, job_id: str | None, code: str | None = None) -> str:
    """404: an unknown job, unless the URL is the likelier cause (see base_url_hint)."""
    hint = base_url_hint(base_url, job_id, code)
    if hint is None:
        return f"job {job_id} does not exist in this space (404)"
    what = f"job {job_id}" if job_id is not None else api_url(base_url)
    return f"{what} was not found (404): {hint}"


_WORKER_SCOPES = frozenset(
    f"jobs:{name}"
    for name in ("worker", "poll", "ack", "progress", "event", "complete", "fail", "keepalive")
)


def _forbidden(message: str) -> str:
    """403, and which key printed by ``emit-push server`` and ``dev`` has the scope."""
    scope = re.search(r"\b(?:jobs|space):[a-z:]+", message)
    key = "worker" if scope is not None and scope.group() in _WORKER_SCOPES else "producer"
    return (
        f"{message} (403): use a key with that scope (the {key} key that"
        " `emit-push server` and `emit-push dev` print has it)"
    )


@contextlib.contextmanager
def explained(base_url: str | None = None, job_id: str | None = None) -> Iterator[None]:
    """Turn the SDK's errors into one clear line with the fix, no traceback.

    Missing or invalid settings are a usage error (exit 2: the flags or the environment
    to fix); a refused call or an unreachable server a failure (exit 1).
    """
    from .._exceptions import (
        APIConnectionError,
        APIError,
        AuthenticationError,
        ConfigurationError,
        EmitError,
        NotFoundError,
        PermissionDeniedError,
        RealtimeError,
    )

    try:
        yield
    except ConfigurationError as exc:
        raise UsageError(f"{exc} (or pass --space-id / --api-key / --base-url)") from None
    except APIConnectionError as exc:
        raise CliError(unreachable(base_url, exc.message)) from None
    except AuthenticationError:
        raise CliError("the API key was refused (401): check EMIT_API_KEY or --api-key") from None
    except PermissionDeniedError as exc:
        raise CliError(_forbidden(exc.message)) from None
    except NotFoundError as exc:
        raise CliError(not_found(base_url, job_id, exc.code)) from None
    except APIError as exc:
        raise CliError(f"{exc.status} {exc.code or ''}: {exc.message}".replace("  ", " ")) from None
    except RealtimeError as exc:
        raise CliError(stream_error(exc, base_url, job_id)) from None
    except EmitError as exc:
        raise CliError(exc.message or type(exc).__name__) from None


def stream_error(exc: RealtimeError, base_url: str | None, job_id: str | None) -> str:
    """One line for what ended a realtime stream; the close codes say as HTTP would."""
    url = api_url(base_url)
    if exc.close_code is not None and not url.endswith(API_SUFFIX):  # no such route there
        return f"the stream was refused ({exc.close_code}): {base_url_hint(base_url)}"
    if exc.close_code == 4404:  # the handshake's 404 too: a job, or the URL, is wrong
        return not_found(base_url, job_id, exc.code)
    if exc.close_code == 4401:
        return "the API key was refused (401): check EMIT_API_KEY or --api-key"
    if exc.close_code == 4403:
        return _forbidden("the stream needs the jobs:read scope")
    if exc.close_code is None and exc.status is None:  # no socket opened: nothing listens
        return unreachable(base_url, exc.message.partition("could not connect: ")[2])
    return f"the stream failed: {exc.message}"


def show_job_lines() -> None:
    """In a terminal (``dev``, ``worker``): the job's ``job.log.*`` lines (the
    ``emit_push.job`` logger, at INFO) go to standard error, when the app configured no
    logging of its own (no handler on the root logger): Python alone shows warnings only.
    The command is the program here, so it may; the library itself adds no handler."""
    import logging

    from .._logs.bridge import ECHO_LOGGER

    job_lines = logging.getLogger(ECHO_LOGGER)
    if logging.getLogger().handlers or job_lines.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    job_lines.addHandler(handler)


def continued(text: str, indent: int) -> str:
    """``text`` with its second and later lines indented: a log entry's traceback stays
    under its entry instead of blending into the lines around it."""
    return text.replace("\n", "\n" + " " * indent)


def first_line(text: object, limit: int = 300) -> str:
    """The first line of ``text`` (a string, else ""), at most ``limit`` characters."""
    if not isinstance(text, str):
        return ""
    line = next(iter(text.strip().splitlines()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def load_app(target: str) -> EmitPush:
    """The ``EmitPush`` named by ``module:attr``, ``path/to/file.py[:attr]`` or ``module``.

    Without ``:attr`` the module's one ``EmitPush`` is taken (or the default app of the
    module-level ``on_job``, when that is what the module used). Anything the import
    raises becomes a one-line ``CliError`` except ``ConfigurationError``, which callers
    explain with its fix (see :func:`explained`).
    """
    from .._framework.app import EmitPush, default_app

    location, _, attr = target.partition(":")
    module = _import(location)
    if attr:
        found = getattr(module, attr, None)
        if found is None:
            raise CliError(f"{location} has no {attr!r}")
        if not isinstance(found, EmitPush):
            kind = type(found).__name__
            raise CliError(f"{target} is a {kind}, not an EmitPush: name the EmitPush instead")
        return found
    apps = {name: v for name, v in vars(module).items() if isinstance(v, EmitPush)}
    if len(apps) == 1:
        return next(iter(apps.values()))
    if len(apps) > 1:
        names = ", ".join(f"{location}:{name}" for name in sorted(apps))
        raise CliError(f"{location} has several EmitPush apps; name one: {names}")
    app = default_app()
    if not app.handlers:
        raise CliError(f"{location} defines no EmitPush app and no @on_job handler")
    return app


def app_folder(target: str) -> Path:
    """What ``--reload`` watches: the folder of the app's file, else the current directory."""
    location = target.partition(":")[0]
    path = Path(location)
    if not _is_path(location):
        return Path.cwd()
    if not path.is_file():
        raise CliError(f"no such file: {location}")
    return path.resolve().parent


def describe_error(exc: BaseException) -> str:
    """``Type: message (file.py, line N)`` on one line, N the innermost line of the user's.

    The user's code is any file outside the standard library, site-packages and emit_push:
    that is where the fix is, rather than where a library raised.
    """
    message = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    if isinstance(exc, SyntaxError):  # its message already says where
        return text
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_users(f.filename)]
    if frames:
        text += f" ({Path(frames[-1].filename).name}, line {frames[-1].lineno})"
    return text


def _is_users(filename: str) -> bool:
    if filename.startswith("<"):
        return False
    others = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(__file__).parent)}
    path = str(Path(filename).resolve())
    return not any(path.startswith(str(Path(other).resolve()) + os.sep) for other in others)


def _is_path(location: str) -> bool:
    return location.endswith(".py") or Path(location).is_file()


def _import(location: str) -> Any:
    from .._exceptions import ConfigurationError

    path = Path(location)
    if _is_path(location):
        if not path.is_file():
            raise CliError(f"no such file: {location}")
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise CliError(f"cannot load {location}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        try:
            spec.loader.exec_module(module)
        except ConfigurationError:
            raise
        except Exception as exc:
            raise CliError(f"cannot import {location}: {describe_error(exc)}") from None
        return module
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(location)
    except ConfigurationError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and location.startswith(exc.name):
            raise CliError(
                f"no module named {location!r} (run from your project's folder)"
            ) from None
        raise CliError(f"cannot import {location}: {describe_error(exc)}") from None
    except Exception as exc:
        raise CliError(f"cannot import {location}: {describe_error(exc)}") from None
