"""The SQLite store: transactions that always end, and databases it refuses to open."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from emit_push.server._store import Store


def test_a_failed_commit_is_rolled_back() -> None:
    store = Store(":memory:")
    try:
        # A deferred foreign key is checked at COMMIT: the commit itself fails.
        store.conn.execute("PRAGMA foreign_keys = ON")
        store.conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        store.conn.execute(
            "CREATE TABLE child (parent INTEGER REFERENCES parent (id)"
            " DEFERRABLE INITIALLY DEFERRED)"
        )
        with pytest.raises(sqlite3.IntegrityError), store.write() as db:
            db.execute("INSERT INTO child VALUES (1)")
        assert not store.conn.in_transaction
        with store.write() as db:  # the connection is usable again
            db.execute("INSERT INTO parent VALUES (1)")
        assert store.conn.execute("SELECT COUNT(*) FROM child").fetchone()[0] == 0
    finally:
        store.close()


def test_an_exception_in_the_block_rolls_back() -> None:
    store = Store(":memory:")

    def insert_then_fail() -> None:
        with store.write() as db:
            db.execute("INSERT INTO meta VALUES ('k', 'v')")
            raise ZeroDivisionError

    try:
        with pytest.raises(ZeroDivisionError):
            insert_then_fail()
        assert not store.conn.in_transaction
        assert store.conn.execute("SELECT COUNT(*) FROM meta").fetchone()[0] == 0
    finally:
        store.close()


def test_other_schema_versions_and_other_files_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(RuntimeError, match="has schema version 99; this server knows 1"):
        Store(str(other))
    text = tmp_path / "notes.txt"
    text.write_text("not a database, but long enough to have a header " * 20)
    with pytest.raises(sqlite3.DatabaseError):
        Store(str(text))


def test_a_file_database_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "emit.sqlite3"
    store = Store(str(path))
    try:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        with closing(sqlite3.connect(path)) as other:  # WAL is a property of the file
            assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        store.close()


def test_an_earlier_database_gains_the_backlog_indexes(tmp_path: Path) -> None:
    """Earlier servers had one status index, which poll and list could not walk in order."""
    path = tmp_path / "v1.sqlite3"
    Store(str(path)).close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP INDEX jobs_by_age")
        conn.execute("DROP INDEX jobs_by_name")
        conn.execute("DROP INDEX jobs_by_space")
        conn.execute("CREATE INDEX jobs_by_status ON jobs (space_id, status, id)")
        conn.execute("INSERT INTO meta VALUES ('kept', 'yes')")
        conn.commit()
    store = Store(str(path))
    try:
        indexes = {
            row[0]
            for row in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
        assert {"jobs_by_age", "jobs_by_name", "jobs_by_space"} <= indexes
        assert "jobs_by_status" not in indexes
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert (
            store.conn.execute("SELECT value FROM meta WHERE key = 'kept'").fetchone()[0] == "yes"
        )
    finally:
        store.close()
