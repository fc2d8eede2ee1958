"""After a restart or a crash: is the SQLite file intact, and is every acknowledged message in it?

Read straight from the file (read-only, its own connection), so the check does not depend on the
service being up or on a memory policy trimming what the API returns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

_BATCH = 500


def _connect(db_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)


def integrity_check(db_path: Path) -> str:
    """`PRAGMA integrity_check`: "ok" for an intact database, otherwise the problems found."""
    with _connect(db_path) as connection:
        rows = connection.execute("PRAGMA integrity_check").fetchall()
    return "; ".join(str(row[0]) for row in rows)


def missing_messages(db_path: Path, messages: Iterable[str]) -> list[str]:
    """The acknowledged user messages the store does not hold."""
    wanted = list(dict.fromkeys(messages))
    found: set[str] = set()
    with _connect(db_path) as connection:
        for start in range(0, len(wanted), _BATCH):
            batch = wanted[start : start + _BATCH]
            marks = ",".join("?" * len(batch))
            rows = connection.execute(
                f"SELECT content FROM turns WHERE speaker = 'user' AND content IN ({marks})", batch
            ).fetchall()
            found.update(str(row[0]) for row in rows)
    return [m for m in wanted if m not in found]


def user_turn_count(db_path: Path, message: str) -> int:
    with _connect(db_path) as connection:
        row = connection.execute(
            "SELECT COUNT(*) FROM turns WHERE speaker = 'user' AND content = ?", (message,)
        ).fetchone()
    return int(row[0])
