"""First start and every start: the default space, its three keys, and what is in memory."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from ._auth import Keyring
from ._config import ServerConfig
from ._ids import new_key, new_ulid
from ._records import PushSettings
from ._scopes import PRODUCER_SCOPES, PROGRESS_SCOPES, WORKER_SCOPES, expand
from ._store import Store

__all__ = ["Credentials", "bootstrap", "load_keys", "load_push_settings"]


@dataclass(frozen=True)
class Credentials:
    """The default space and its keys, for the start-up banner and for tests."""

    space_id: str
    worker_key: str
    producer_key: str
    progress_token: str

    def __repr__(self) -> str:  # keys stay out of reprs and logs
        return f"Credentials(space_id={self.space_id!r}, keys=<3 hidden>)"


def bootstrap(store: Store, config: ServerConfig, now_ms: int) -> Credentials:
    """Create what is missing; keys given in the config replace those of the same role."""
    db = store.conn
    with store.write():
        space_id = config.space_id or _meta(db, "default_space") or new_ulid(now_ms)
        _ensure_space(db, space_id, now_ms)
        db.execute("INSERT OR REPLACE INTO meta VALUES ('default_space', ?)", (space_id,))
        roles = (
            ("worker", WORKER_SCOPES, config.worker_key),
            ("producer", PRODUCER_SCOPES, config.producer_key),
            ("progress", PROGRESS_SCOPES, config.progress_token),
        )
        keys = []
        for role, scopes, given in roles:
            row = db.execute(
                "SELECT key FROM api_keys WHERE space_id = ? AND name = ?", (space_id, role)
            ).fetchone()
            key = given or (row[0] if row else new_key())
            if row is None or row[0] != key:
                db.execute("DELETE FROM api_keys WHERE space_id = ? AND name = ?", (space_id, role))
                _put_key(db, key, role, space_id, scopes, now_ms)
            keys.append(key)
        for spec in config.api_keys:
            key_space = spec.space_id or space_id
            _ensure_space(db, key_space, now_ms)
            _put_key(db, spec.key, spec.name, key_space, spec.scopes, now_ms)
    return Credentials(space_id, *keys)


def load_keys(store: Store, keyring: Keyring) -> None:
    for key, name, space_id, scopes in store.conn.execute(
        "SELECT key, name, space_id, scopes FROM api_keys"
    ):
        keyring.add(key, name, space_id, expand(json.loads(scopes)))


def load_push_settings(store: Store) -> dict[str, PushSettings]:
    settings = {}
    for row in store.conn.execute("SELECT * FROM spaces WHERE push_url IS NOT NULL"):
        names = row["push_job_names"]
        settings[row["id"]] = PushSettings(
            url=row["push_url"],
            headers=json.loads(row["push_headers"]),
            job_names=None if names is None else frozenset(json.loads(names)),
        )
    return settings


def _meta(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _ensure_space(db: sqlite3.Connection, space_id: str, now_ms: int) -> None:
    db.execute("INSERT OR IGNORE INTO spaces (id, created_at) VALUES (?, ?)", (space_id, now_ms))


def _put_key(
    db: sqlite3.Connection,
    key: str,
    name: str,
    space_id: str,
    scopes: Sequence[str],
    now_ms: int,
) -> None:
    db.execute(
        "INSERT OR REPLACE INTO api_keys VALUES (?, ?, ?, ?, ?)",
        (key, space_id, name, json.dumps(list(scopes)), now_ms),
    )
