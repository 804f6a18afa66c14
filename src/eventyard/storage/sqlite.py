"""Opening a SQLite file in WAL mode when other connections may be opening it at the same time.

eventyard keeps small SQLite files next to its logs (an app's dedupe store, the demo's alert
state and deal board): WAL, so readers never block the writer, and ``synchronous=NORMAL``,
so a commit survives the process dying. Switching a new file to WAL needs an exclusive lock,
and when another connection holds a lock on the file (another process or store opening the
same new file), SQLite answers ``SQLITE_BUSY`` at once instead of calling the busy handler,
since waiting could deadlock there; the connection's ``timeout`` does not apply. Two stores
opening one new file together failed that way about one time in three.
:func:`connect_wal` retries the switch, backing off, until the timeout.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Final

__all__ = ["connect_wal"]

_FIRST_BACKOFF: Final = 0.001
_LAST_BACKOFF: Final = 0.05
"""Seconds between two tries of the switch to WAL: doubling from the first to the last."""


def connect_wal(
    path: str | Path, *, timeout: float, check_same_thread: bool = True
) -> sqlite3.Connection:
    """A connection to ``path`` (created if missing) in autocommit mode, WAL and
    ``synchronous=NORMAL``, waiting up to ``timeout`` seconds for locks, the switch to WAL
    included. Raises ``sqlite3.Error`` as SQLite does (``database is locked`` once the
    timeout has passed)."""
    connection = sqlite3.connect(
        path, timeout=timeout, isolation_level=None, check_same_thread=check_same_thread
    )
    try:
        _switch_to_wal(connection, time.monotonic() + timeout)
        connection.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        connection.close()
        raise
    return connection


def _switch_to_wal(connection: sqlite3.Connection, deadline: float) -> None:
    backoff = _FIRST_BACKOFF
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
        time.sleep(backoff)
        backoff = min(backoff * 2, _LAST_BACKOFF)
