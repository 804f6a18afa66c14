"""The demo's small SQLite files (the alert state and the deal board), opened and used one way.

Both are written by one stage and read by the CLI at any time, so both use WAL (readers never
block the writer) with ``synchronous=NORMAL`` (a commit survives the process dying; a power
cut may lose the last ones, which the stages recover from their topics), autocommit mode so
every transaction is explicit, and one connection shared by threads under the owner's lock.
:class:`SQLiteFile` is that owner: the lock, the connection, closing, and the two ways in (a
write transaction, a locked read), each turning a SQLite failure into one ``StorageError``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

from eventyard.errors import StorageError
from eventyard.storage.sqlite import connect_wal

__all__ = ["SQLiteFile", "open_database"]


def open_database(path: Path, schema: str, what: str) -> sqlite3.Connection:
    """Open (creating if needed) the file at ``path`` and apply ``schema``.

    A SQLite failure raises :class:`~eventyard.errors.StorageError` as ``"<what> <path>: ..."``.
    """
    try:
        db = connect_wal(path, timeout=30.0, check_same_thread=False)
        db.executescript(schema)
    except sqlite3.Error as exc:
        raise StorageError(f"{what} {path}: {exc}") from exc
    return db


class SQLiteFile:
    """One demo SQLite file: ``path``, opened with ``schema``; ``what`` names it in errors."""

    def __init__(self, path: str | Path, schema: str, what: str) -> None:
        self.path = Path(path)
        self._what = what
        self._lock = threading.Lock()
        self._db = open_database(self.path, schema, what)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the file; idempotent."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside one ``BEGIN IMMEDIATE`` transaction, under the lock; an
        exception rolls it back."""
        with self._reading() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection under the lock, outside any transaction."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise StorageError(f"{self._what} {self.path}: {exc}") from exc
