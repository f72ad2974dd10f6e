"""API key scopes, their shorthands, and the scopes of the keys made on first start."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ADMIN",
    "ALL_SCOPES",
    "PRODUCER_SCOPES",
    "PROGRESS_SCOPES",
    "WORKER_SCOPES",
    "expand",
    "unknown_scopes",
]

ADMIN = "space:admin"
"""Local-server only: the push settings call (emit.run does this in its dashboard)."""

ALL_SCOPES = frozenset(
    {
        "jobs:create",
        "jobs:read",
        "jobs:read:progress",
        "jobs:poll",
        "jobs:ack",
        "jobs:progress",
        "jobs:event",
        "jobs:complete",
        "jobs:fail",
        "jobs:kill",
        "jobs:keepalive",
        ADMIN,
    }
)

_SHORTHANDS: dict[str, frozenset[str]] = {
    "jobs:worker": frozenset(
        {
            "jobs:read",
            "jobs:poll",
            "jobs:ack",
            "jobs:progress",
            "jobs:event",
            "jobs:complete",
            "jobs:fail",
            "jobs:keepalive",
            "jobs:read:progress",
        }
    ),
    "jobs:write": frozenset(
        {"jobs:ack", "jobs:progress", "jobs:event", "jobs:complete", "jobs:fail", "jobs:keepalive"}
    ),
}

WORKER_SCOPES = ("jobs:worker",)
PRODUCER_SCOPES = ("jobs:create", "jobs:read", "jobs:kill", ADMIN)
PROGRESS_SCOPES = ("jobs:read:progress",)


def expand(scopes: Iterable[str]) -> frozenset[str]:
    """The concrete scopes a key holds: shorthands unfolded, ``jobs:read`` ⊇ read:progress."""
    held: set[str] = set()
    for scope in scopes:
        held |= _SHORTHANDS.get(scope, {scope})
    if "jobs:read" in held:
        held.add("jobs:read:progress")
    return frozenset(held)


def unknown_scopes(scopes: Iterable[str]) -> list[str]:
    return [s for s in scopes if s not in ALL_SCOPES and s not in _SHORTHANDS]
