"""emit-push: run emit.run background jobs on serverless platforms and web apps."""

from __future__ import annotations

from ._version import __version__

__all__ = ["__version__"]
