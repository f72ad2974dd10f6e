"""SQLite storage: schema, connection settings and transactions.

One connection, used only from the server's event loop thread. Every write runs inside
``BEGIN IMMEDIATE``, so a transaction is atomic against other connections too, and
SQLite's WAL mode keeps readers off the writer's back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["SCHEMA_VERSION", "Store"]

log = logging.getLogger("emit_push.server")

SCHEMA_VERSION = 1

# Poll and list read pending (or any) jobs in the order of these indexes, so that they cost
# the same at 200k pending jobs as at 1k: poll walks ``jobs_by_age`` (``jobs_by_name`` per
# name of its filter) from the oldest, list walks them from the newest; ``offset`` and the
# ``before`` cursor step through the index alone (the rows are read for the page only).
_INDEXES = """
CREATE INDEX IF NOT EXISTS jobs_by_age ON jobs (space_id, status, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_by_name ON jobs (space_id, status, name, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_by_space ON jobs (space_id, created_at, id);
DROP INDEX IF EXISTS jobs_by_status;
"""
_INDEX_NAMES = frozenset({"jobs_by_age", "jobs_by_name", "jobs_by_space"})

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE spaces (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    push_url TEXT,
    push_headers TEXT NOT NULL DEFAULT '{}',
    push_job_names TEXT
);
CREATE TABLE api_keys (
    key TEXT PRIMARY KEY,
    space_id TEXT NOT NULL,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    space_id TEXT NOT NULL,
    name TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    max_retries INTEGER NOT NULL,
    attempt_number INTEGER NOT NULL,
    timeout_seconds INTEGER NOT NULL,
    scheduled_for INTEGER,
    callback_url TEXT,
    callback_headers TEXT,
    delivered_at INTEGER,
    started_at INTEGER,
    completed_at INTEGER,
    result TEXT,
    progress TEXT,
    checkpoint TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    due_at INTEGER,
    log_seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_due ON jobs (due_at) WHERE due_at IS NOT NULL;
CREATE TABLE job_events (
    id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    attempt_number INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, id)
) WITHOUT ROWID;
CREATE TABLE job_logs (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    level INTEGER NOT NULL,
    message TEXT NOT NULL,
    source TEXT,
    metadata TEXT,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    job_id TEXT NOT NULL,
    space_id TEXT NOT NULL,
    due_at INTEGER NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    url TEXT,
    headers TEXT,
    body TEXT NOT NULL
);
CREATE INDEX outbox_by_due ON outbox (due_at);
"""


class Store:
    """The database connection, with the schema created or checked on open."""

    def __init__(self, path: str) -> None:
        if sqlite3.sqlite_version_info < (3, 35):  # UPDATE ... RETURNING
            raise RuntimeError(f"the local server needs SQLite 3.35+, not {sqlite3.sqlite_version}")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._grouping = False
        self._group_open = False
        self._waiters: list[asyncio.Future[None]] = []
        self._after: list[Callable[[], None]] = []
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self.conn.row_factory = sqlite3.Row
            pragmas = ["busy_timeout = 5000", "temp_store = MEMORY", "cache_size = -32000"]
            if path != ":memory:":
                pragmas += ["journal_mode = WAL", "synchronous = NORMAL"]
            for pragma in pragmas:
                self.conn.execute(f"PRAGMA {pragma}")
            self._migrate()
        except BaseException:
            self.conn.close()
            raise

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in {0, SCHEMA_VERSION}:
            raise RuntimeError(
                f"{self.path} has schema version {version}; this server knows {SCHEMA_VERSION}."
                " Start with a new --db file."
            )
        names = {row[0] for row in self.conn.execute("SELECT name FROM sqlite_master")}
        if version == SCHEMA_VERSION and names >= _INDEX_NAMES and "jobs_by_status" not in names:
            return
        # Indexes are no change of schema: a database of an earlier server gains them here
        # (and stays readable by that server).
        with self.write():
            statements = (_SCHEMA if version == 0 else "") + _INDEXES
            for statement in statements.split(";"):
                if statement.strip():
                    self.conn.execute(statement)
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def group_commits(self) -> None:
        """From now on (the server is running), commit the writes of one loop turn at once.

        Each write runs in a savepoint of one transaction that is committed by a callback
        at the start of the next turn of the event loop: under load one commit serves many
        requests. Answers wait for it (``durable``), and events are published after it
        (``after_commit``), so nothing is shown or acknowledged that a crash could undo.
        """
        self._grouping = True

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed on exit, rolled back on an exception.

        Also when COMMIT itself fails (a busy database, a deferred constraint): otherwise
        the connection would stay inside the transaction and the next BEGIN would fail.
        With grouped commits, a savepoint of the group's transaction instead.
        """
        if self._grouping:
            with self._grouped():
                yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # the first error is the one to see
                    self.conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _grouped(self) -> Iterator[None]:
        if not self._group_open:
            self.conn.execute("BEGIN IMMEDIATE")
            self._group_open = True
            asyncio.get_running_loop().call_soon(self.commit_group)
        self.conn.execute("SAVEPOINT write")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK TO write")
            self.conn.execute("RELEASE write")
            raise
        self.conn.execute("RELEASE write")

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the current write is committed (at once if it is)."""
        if self._group_open:
            self._after.append(callback)
        else:
            callback()

    async def durable(self) -> None:
        """Return once every write made so far is committed."""
        if self._group_open:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def commit_group(self) -> None:
        """Commit the open group (the loop does this each turn; ``close`` does it last)."""
        if not self._group_open:
            return
        waiters, self._waiters = self._waiters, []
        after, self._after = self._after, []
        self._group_open = False
        try:
            self.conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            log.exception("a grouped commit failed; its %d writes are undone", len(waiters))
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        for callback in after:
            try:
                callback()
            except Exception:
                log.exception("an after-commit callback failed")

    def close(self) -> None:
        self.commit_group()
        self.conn.close()
