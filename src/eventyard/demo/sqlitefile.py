"""Opening the demo's small SQLite files (the alert state and the deal board) one way.

Both are written by one stage and read by the CLI at any time, so both use WAL (readers never
block the writer) with ``synchronous=NORMAL`` (a commit survives the process dying; a power
cut may lose the last ones, which the stages recover from their topics), autocommit mode so
every transaction is explicit, and one connection shared by threads under the owner's lock.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from eventyard.errors import StorageError

__all__ = ["open_database"]


def open_database(path: Path, schema: str, what: str) -> sqlite3.Connection:
    """Open (creating if needed) the file at ``path`` and apply ``schema``.

    A SQLite failure raises :class:`~eventyard.errors.StorageError` as ``"<what> <path>: ..."``.
    """
    try:
        db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(schema)
    except sqlite3.Error as exc:
        raise StorageError(f"{what} {path}: {exc}") from exc
    return db
