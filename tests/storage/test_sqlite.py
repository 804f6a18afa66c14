"""connect_wal: a new SQLite file switched to WAL while other connections open it too."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from eventyard.storage.sqlite import connect_wal


def open_together(path: Path, count: int) -> tuple[list[str], list[BaseException]]:
    """Open ``path`` from ``count`` threads at once: each connection's journal mode, and the
    errors."""
    start = threading.Barrier(count)
    modes: list[str] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            start.wait()
            connection = connect_wal(path, timeout=10.0)
            modes.append(connection.execute("PRAGMA journal_mode").fetchone()[0])
            connection.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)")
            connection.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return modes, errors


def test_connections_opening_one_new_file_together_all_get_wal(tmp_path: Path) -> None:
    """Plain ``PRAGMA journal_mode=WAL`` failed with ``database is locked`` in about a third
    of these races, whatever the connection's timeout."""
    for trial in range(40):
        modes, errors = open_together(tmp_path / f"race-{trial}.db", 4)
        assert errors == []
        assert modes == ["wal"] * 4


def test_settings_and_autocommit(tmp_path: Path) -> None:
    connection = connect_wal(tmp_path / "one.db", timeout=1.0)
    assert connection.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert connection.isolation_level is None
    connection.close()


def test_a_lock_held_past_the_timeout_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "held.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (k TEXT)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            connect_wal(path, timeout=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
