"""The ``emit-push`` command: ``main`` is its entry point (``python -m emit_push.cli``).

One module per command (``server``, ``dev``, ``worker``, ``jobs``, ``watch``, ``demo``),
what the serving commands share in ``serving``, flags and errors in ``common``.
"""

from .main import main

__all__ = ["main"]
