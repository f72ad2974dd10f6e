"""Who may push: the secrets a push endpoint accepts, and the size past which it reads no further.

Apart from ``push`` because an app needs them when it is made, at a cold start, and the
rest of the push protocol only when a push arrives. No I/O.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence

__all__ = ["MAX_PUSH_BYTES", "PushAuth"]

MAX_PUSH_BYTES = 64 * 1024
"""A push is a few hundred bytes; anything this large is not one."""


class PushAuth:
    """The push secrets to accept, and where the sender puts them.

    emit.run does not sign pushes; the secret is a custom header set in the space's push
    settings. In ``Authorization`` it is sent as ``Bearer <secret>``; in any other header,
    as is. Several secrets may be valid at once, for rotation. Compared in constant time.
    """

    # A plain class: a dataclass's generated methods would be built at every cold start.
    __slots__ = ("header", "secrets")

    def __init__(self, secrets: tuple[str, ...] = (), header: str = "authorization") -> None:
        self.secrets = secrets
        self.header = header

    def __repr__(self) -> str:
        return f"PushAuth(header={self.header!r})"  # never the secrets

    @classmethod
    def of(cls, secrets: str | Sequence[str] | None, header: str) -> PushAuth:
        if secrets is None:
            found: tuple[str, ...] = ()
        elif isinstance(secrets, str):
            found = tuple(s.strip() for s in secrets.split(",") if s.strip())
        else:
            found = tuple(s.strip() for s in secrets if s.strip())
        return cls(found, header.strip().lower())

    @property
    def enabled(self) -> bool:
        return bool(self.secrets)

    def accepts(self, headers: Mapping[str, str]) -> bool:
        if not self.secrets:
            return True
        value = headers.get(self.header, "").strip()
        if self.header == "authorization":
            scheme, _, value = value.partition(" ")
            if scheme.lower() != "bearer":
                return False
            value = value.strip()
        given = value.encode()
        # Compare against every secret (no early exit), each in constant time.
        matches = [hmac.compare_digest(given, secret.encode()) for secret in self.secrets]
        return any(matches)
