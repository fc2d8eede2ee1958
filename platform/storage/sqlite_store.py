"""The default session store: one SQLite file in WAL mode, driven from a dedicated thread.

sqlite3 calls block, so every call runs on a single-thread executor that owns the
connection: the event loop never waits on disk, and writes from this process are
serialised without a Python lock. Several processes (uvicorn workers) may share the
file: WAL lets readers proceed during a write, `BEGIN IMMEDIATE` takes the write
lock up front (so two writers never deadlock upgrading from a read lock), and
`busy_timeout` makes a writer wait for the lock instead of failing at once.

The schema's version is SQLite's `user_version`. Opening a file written by an
older rolescope migrates it in place, under the write lock (so two processes
opening one old file do not both alter it) and without touching a row: columns
are only added, and a session stored before versions were recorded keeps NULL
as its role version until its next turn records one.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, TypeVar

from rolescope.storage.base import (
    ExchangeRecord,
    IdempotencyKeyTaken,
    IdempotencyRecord,
    MemoryPolicyView,
    SessionOwnedElsewhere,
    SessionRecord,
    StoreError,
    Turn,
)

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    role_name  TEXT NOT NULL,
    owner      TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    role_version TEXT
);
CREATE TABLE IF NOT EXISTS turns (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    speaker    TEXT NOT NULL CHECK (speaker IN ('user', 'assistant')),
    content    TEXT NOT NULL,
    timestamp  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_session ON turns(session_id, id);
CREATE TABLE IF NOT EXISTS idempotency (
    owner         TEXT NOT NULL,
    key           TEXT NOT NULL,
    body_digest   TEXT NOT NULL,
    response_json TEXT NOT NULL,
    created_at    REAL NOT NULL,
    PRIMARY KEY (owner, key)
);
"""

# 1: sessions.role_version (the version that answered the session's first turn).
SCHEMA_VERSION = 1

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


def _migrate(c: sqlite3.Connection) -> None:
    """Bring a file written by an older rolescope up to `SCHEMA_VERSION`, keeping every row."""
    if c.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return
    c.execute("BEGIN IMMEDIATE")
    try:
        # Checked again under the lock: another process may have migrated the file meanwhile.
        columns = {row[1] for row in c.execute("PRAGMA table_info(sessions)")}
        if "role_version" not in columns:
            c.execute("ALTER TABLE sessions ADD COLUMN role_version TEXT")
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise


class SqliteSessionStore:
    backend_name = "SQLite"

    def __init__(
        self,
        path: Path,
        *,
        synchronous: Synchronous = "NORMAL",
        busy_timeout_ms: int = 5000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = path
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None

    @property
    def location(self) -> str:
        # Relative paths are shown as ./data/x.db so it is clear they depend on the working directory.
        shown = str(self._path)
        return shown if self._path.is_absolute() or shown.startswith(".") else f"./{shown}"

    async def _run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None or self._connection is None:
            raise StoreError("the SQLite session store is not open")
        connection = self._connection
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, operation, connection)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite {self._path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA synchronous = {self._synchronous}")
        connection.execute("PRAGMA foreign_keys = ON")
        connection.executescript(_SCHEMA)
        _migrate(connection)
        return connection

    async def open(self) -> None:
        if self._connection is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rolescope-sqlite")
        try:
            self._connection = await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)
        except (sqlite3.Error, OSError) as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise StoreError(f"cannot open SQLite session store {self._path}: {exc}") from exc

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._connection is not None:
            connection = self._connection
            await asyncio.get_running_loop().run_in_executor(self._executor, connection.close)
        self._executor.shutdown(wait=True)
        self._executor, self._connection = None, None

    async def ping(self) -> bool:
        try:
            return await self._run(lambda c: c.execute("SELECT 1").fetchone() == (1,))
        except StoreError:
            return False

    def _expired(self, updated_at: float, policy: MemoryPolicyView) -> bool:
        return policy.ttl_seconds is not None and self._clock() - updated_at > policy.ttl_seconds

    async def get_session(self, session_id: str, policy: MemoryPolicyView) -> SessionRecord | None:
        def read(c: sqlite3.Connection) -> SessionRecord | None:
            row = c.execute(
                "SELECT role_name, owner, created_at, updated_at, role_version FROM sessions"
                " WHERE session_id = ?",
                (session_id,),
            ).fetchone()
            if row is None or self._expired(row[3], policy):
                return None
            turns = c.execute(
                "SELECT speaker, content, timestamp FROM turns WHERE session_id = ? ORDER BY id DESC LIMIT ?",
                (session_id, policy.max_turns),
            ).fetchall()
            return SessionRecord(
                session_id,
                row[0],
                row[1],
                row[2],
                row[3],
                [Turn(s, t, ts) for s, t, ts in reversed(turns)],
                role_version=row[4],
            )

        return await self._run(read)

    async def save_exchange(self, exchange: ExchangeRecord, policy: MemoryPolicyView) -> None:
        def write(c: sqlite3.Connection) -> None:
            now = exchange.assistant_turn.timestamp
            c.execute("BEGIN IMMEDIATE")
            try:
                record = exchange.idempotency
                if record is not None and c.execute(
                    "SELECT 1 FROM idempotency WHERE owner = ? AND key = ?", (record.owner or "", record.key)
                ).fetchone():
                    raise IdempotencyKeyTaken(f"idempotency key {record.key!r} is already stored")
                row = c.execute(
                    "SELECT updated_at, owner FROM sessions WHERE session_id = ?", (exchange.session_id,)
                ).fetchone()
                if row is not None and self._expired(row[0], policy):
                    # An expired session starts over under the same id: its old turns are forgotten.
                    c.execute("DELETE FROM turns WHERE session_id = ?", (exchange.session_id,))
                    c.execute("DELETE FROM sessions WHERE session_id = ?", (exchange.session_id,))
                    row = None
                if row is None:
                    c.execute(
                        "INSERT INTO sessions"
                        " (session_id, role_name, owner, created_at, updated_at, role_version)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            exchange.session_id,
                            exchange.role_name,
                            exchange.owner,
                            exchange.started_at,
                            now,
                            exchange.role_version,
                        ),
                    )
                elif row[1] != exchange.owner:
                    raise SessionOwnedElsewhere(f"session {exchange.session_id!r} belongs to another owner")
                else:
                    c.execute(
                        "UPDATE sessions SET updated_at = ?, role_version = COALESCE(?, role_version)"
                        " WHERE session_id = ?",
                        (now, exchange.role_version, exchange.session_id),
                    )
                c.executemany(
                    "INSERT INTO turns (session_id, speaker, content, timestamp) VALUES (?, ?, ?, ?)",
                    [
                        (exchange.session_id, t.speaker, t.content, t.timestamp)
                        for t in exchange.turns
                    ],
                )
                # A session created just now holds only these turns: nothing to trim unless they
                # alone exceed the limit (one statement and an index scan fewer per first exchange).
                if row is not None or len(exchange.turns) > policy.max_turns:
                    c.execute(
                        "DELETE FROM turns WHERE session_id = ? AND id NOT IN"
                        " (SELECT id FROM turns WHERE session_id = ? ORDER BY id DESC LIMIT ?)",
                        (exchange.session_id, exchange.session_id, policy.max_turns),
                    )
                if record is not None:
                    c.execute(
                        "INSERT INTO idempotency"
                        " (owner, key, body_digest, response_json, created_at) VALUES (?, ?, ?, ?, ?)",
                        (
                            record.owner or "",
                            record.key,
                            record.body_digest,
                            record.response_json,
                            record.created_at,
                        ),
                    )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

        await self._run(write)

    async def find_idempotent(self, owner: str | None, key: str) -> IdempotencyRecord | None:
        def read(c: sqlite3.Connection) -> IdempotencyRecord | None:
            row = c.execute(
                "SELECT body_digest, response_json, created_at FROM idempotency WHERE owner = ? AND key = ?",
                (owner or "", key),
            ).fetchone()
            return None if row is None else IdempotencyRecord(owner, key, row[0], row[1], row[2])

        return await self._run(read)
