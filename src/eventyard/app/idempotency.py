"""Remembering which events a consumer group has handled, so redeliveries can be skipped.

Delivery is at least once: after a crash or a rebalance the records since the last commit come
again. An idempotent subscription asks a :class:`DedupeStore` which event ids its group has
already seen. Every store keeps, per ``(group, event_id)``, the time the id was first recorded,
and forgets it ``retention`` after that: an id recorded longer ago than ``retention`` counts as
not seen by every method, even before :meth:`DedupeStore.purge_expired` has removed it, so the
answer never depends on when the purge last ran. Recording an expired id again restarts its
retention; recording a live id keeps its first-seen time.

- :meth:`DedupeStore.claim` is the batch check-and-mark: it returns the ids of the batch not
  seen before and records them, atomically, so two claims of overlapping ids (two workers after
  a rebalance, or one worker twice) never both get the same id.
- :meth:`DedupeStore.seen` (one id) or :meth:`DedupeStore.seen_many` (a batch, one query) and
  :meth:`DedupeStore.mark` are the two halves for a dispatcher that marks only after its
  handler succeeded (a crash in between yields a duplicate, never a loss).
- :meth:`DedupeStore.release` forgets ids, for a claimed event whose handler failed and will
  be retried (in place or through a retry topic), so the retry is not skipped as a duplicate.

:class:`SQLiteDedupeStore` keeps the ids in one SQLite file (stdlib ``sqlite3``) and survives
a restart. Writes (every method but the two reads) go through one worker thread (a
single-thread executor owned by the store), never the event loop, since a write may wait on
the disk: each is a job queued to that worker, so writes run one at a time in the order they
were asked, the writing connection stays with the thread that opened it, and a caller
cancelled while its job runs cannot let a second job onto the connection mid-transaction
(which a lock released on cancellation around ``asyncio.to_thread`` would allow). A job
already running finishes even when its caller is cancelled, so a cancelled ``claim`` may have
recorded its ids: release them if the events will be handled again. Each write is one
transaction, begun ``IMMEDIATE`` so another process sharing the file cannot interleave
between a claim's read and its write. The journal is WAL with ``synchronous=NORMAL``: a
commit survives the process dying at any point; a power cut may lose the last commits, which
then only lets a duplicate through, the at-least-once case the store narrows anyway. The rows
are ``(group_name, event_id)`` primary key and ``first_seen`` (Unix seconds, from the
injected ``clock``), with an index on ``first_seen`` for the purge.

The reads, :meth:`~SQLiteDedupeStore.seen` and :meth:`~SQLiteDedupeStore.seen_many`, run on
the calling thread instead, on a connection of that thread's own: in WAL mode a read neither
waits for the writer nor holds it up, and it takes about 0.1 ms, where a round trip through
the worker thread took several milliseconds whenever the event loop was busy (the
subscription asks before every fetched batch: in the deal-sourcing demo's one-process mode
that round trip was half of the alerts stage's latency). A read sees every write that had
finished when it began, not one still running; a dispatcher marks ids only after handling
them, and keeps the ids it has taken and not yet marked itself (:mod:`eventyard.app.worker`).

:class:`MemoryDedupeStore` has the same contract in a dictionary, for tests and for
subscriptions that accept forgetting on restart.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Final, Protocol, TypeVar

from eventyard.errors import ConfigError, EventyardError, StorageError
from eventyard.storage.sqlite import connect_wal

__all__ = ["DedupeStore", "MemoryDedupeStore", "SQLiteDedupeStore"]

T = TypeVar("T")

DEFAULT_RETENTION: Final = timedelta(days=7)
_CHUNK: Final = 500
"""Ids per ``IN (...)`` query: well below SQLite's limit on bound parameters."""

_READ_BUSY_TIMEOUT: Final = 1.0
"""Seconds a read on the caller's thread may wait for a lock. A WAL reader waits for none in
normal use (only, briefly, while a connection recovers the WAL index); the worker's writes
keep the long timeout."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS processed_events (
    group_name TEXT NOT NULL,
    event_id TEXT NOT NULL,
    first_seen REAL NOT NULL,
    PRIMARY KEY (group_name, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS processed_events_first_seen ON processed_events (first_seen);
"""

_UPSERT: Final = (
    "INSERT INTO processed_events (group_name, event_id, first_seen) VALUES (?, ?, ?) "
    "ON CONFLICT (group_name, event_id) DO UPDATE SET first_seen = excluded.first_seen "
    "WHERE processed_events.first_seen <= ?"
)


class DedupeStore(Protocol):
    """Which event ids each consumer group has seen within the retention (module docstring)."""

    async def seen(self, group: str, event_id: str) -> bool:
        """Whether ``event_id`` was recorded for ``group`` within the retention."""
        ...

    async def seen_many(self, group: str, event_ids: Sequence[str]) -> set[str]:
        """The ids of ``event_ids`` recorded for ``group`` within the retention (one query)."""
        ...

    async def mark(self, group: str, event_ids: Sequence[str]) -> None:
        """Record ``event_ids`` for ``group`` in one transaction."""
        ...

    async def claim(self, group: str, event_ids: Sequence[str]) -> set[str]:
        """Return the ids not seen before and record them, atomically."""
        ...

    async def release(self, group: str, event_ids: Sequence[str]) -> None:
        """Forget ``event_ids`` for ``group`` (their handling failed and will be retried)."""
        ...

    async def purge_expired(self) -> int:
        """Delete every record older than the retention; return how many were deleted."""
        ...

    async def close(self) -> None:
        """Release the store's resources; idempotent."""
        ...


def _retention_seconds(retention: timedelta) -> float:
    if not isinstance(retention, timedelta) or retention <= timedelta(0):
        raise ConfigError(f"dedupe retention must be a positive timedelta, got {retention!r}")
    return retention.total_seconds()


def _ids(event_ids: Sequence[str]) -> list[str]:
    """The distinct ids in first-seen order; a bare string is refused (it is a sequence too)."""
    if isinstance(event_ids, str):
        raise TypeError("event_ids must be a sequence of ids, not one string")
    return list(dict.fromkeys(event_ids))


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class MemoryDedupeStore:
    """The :class:`DedupeStore` contract in a dictionary; forgets everything on restart."""

    def __init__(
        self, retention: timedelta = DEFAULT_RETENTION, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._retention = _retention_seconds(retention)
        self._clock = clock
        self._first_seen: dict[str, dict[str, float]] = {}

    def _live(self, group: str, event_id: str, cutoff: float) -> bool:
        first = self._first_seen.get(group, {}).get(event_id)
        return first is not None and first > cutoff

    async def seen(self, group: str, event_id: str) -> bool:
        return self._live(group, event_id, self._clock() - self._retention)

    async def seen_many(self, group: str, event_ids: Sequence[str]) -> set[str]:
        cutoff = self._clock() - self._retention
        return {event_id for event_id in _ids(event_ids) if self._live(group, event_id, cutoff)}

    async def mark(self, group: str, event_ids: Sequence[str]) -> None:
        now = self._clock()
        cutoff = now - self._retention
        ids = self._first_seen.setdefault(group, {})
        for event_id in _ids(event_ids):
            if not self._live(group, event_id, cutoff):
                ids[event_id] = now

    async def claim(self, group: str, event_ids: Sequence[str]) -> set[str]:
        now = self._clock()
        cutoff = now - self._retention
        ids = self._first_seen.setdefault(group, {})
        new: set[str] = set()
        for event_id in _ids(event_ids):
            if not self._live(group, event_id, cutoff):
                ids[event_id] = now
                new.add(event_id)
        return new

    async def release(self, group: str, event_ids: Sequence[str]) -> None:
        ids = self._first_seen.get(group, {})
        for event_id in _ids(event_ids):
            ids.pop(event_id, None)

    async def purge_expired(self) -> int:
        cutoff = self._clock() - self._retention
        purged = 0
        for group, ids in list(self._first_seen.items()):
            expired = [event_id for event_id, first in ids.items() if first <= cutoff]
            for event_id in expired:
                del ids[event_id]
            purged += len(expired)
            if not ids:
                del self._first_seen[group]
        return purged

    async def close(self) -> None:
        return None


class SQLiteDedupeStore:
    """The :class:`DedupeStore` contract in a SQLite file, kept across restarts.

    The file is opened on first use (or by :meth:`open`), in the store's worker thread, so
    the store can be built at import time, before any event loop runs; each thread that reads
    opens a read connection of its own on its first read (module docstring). SQLite failures
    raise :class:`~eventyard.errors.StorageError` naming the file.
    """

    def __init__(
        self,
        path: str | Path,
        retention: timedelta = DEFAULT_RETENTION,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self._retention = _retention_seconds(retention)
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None
        """The writing connection: used only by the worker thread (a first read only checks
        that it exists, which means the file and its table do)."""
        self._reading = threading.local()
        """``connection``: the calling thread's read connection, once it has read."""
        self._readers: list[sqlite3.Connection] = []
        """Every thread's read connection, to close with the store."""
        self._closed = False

    async def open(self) -> None:
        """Open (and if needed create) the file now rather than on first use; idempotent."""
        await self._run(lambda connection: None)

    async def seen(self, group: str, event_id: str) -> bool:
        return bool(await self.seen_many(group, [event_id]))

    async def seen_many(self, group: str, event_ids: Sequence[str]) -> set[str]:
        ids = _ids(event_ids)
        if not ids:
            return set()
        reader = await self._reader()
        try:
            with _transaction(reader, "BEGIN"):
                return _select_live(reader, group, ids, self._clock() - self._retention)
        except sqlite3.Error as exc:
            raise StorageError(f"dedupe store {self.path}: {exc}") from exc

    async def mark(self, group: str, event_ids: Sequence[str]) -> None:
        ids = _ids(event_ids)
        if not ids:
            return

        def job(connection: sqlite3.Connection) -> None:
            now = self._clock()
            cutoff = now - self._retention
            with _transaction(connection):
                connection.executemany(_UPSERT, [(group, i, now, cutoff) for i in ids])

        await self._run(job)

    async def claim(self, group: str, event_ids: Sequence[str]) -> set[str]:
        ids = _ids(event_ids)
        if not ids:
            return set()

        def job(connection: sqlite3.Connection) -> set[str]:
            now = self._clock()
            cutoff = now - self._retention
            with _transaction(connection):
                new = set(ids).difference(_select_live(connection, group, ids, cutoff))
                connection.executemany(_UPSERT, [(group, i, now, cutoff) for i in ids if i in new])
            return new

        return await self._run(job)

    async def transact(
        self, group: str, event_id: str, work: Callable[[sqlite3.Connection], T]
    ) -> tuple[bool, T | None]:
        """Run ``work(connection)`` and record ``event_id`` in one transaction, once.

        This is how a handler gets exactly-once effects: it writes what the event changes to
        tables of this same file inside ``work``, so the change and the record of the event
        commit together or not at all, and a redelivered event (after a crash, before the
        offset commit) finds its id recorded and changes nothing. Returns ``(True, result)``
        when ``work`` ran, ``(False, None)`` when the id was already recorded for ``group``.
        An exception from ``work`` rolls the transaction back and propagates.
        """

        def job(connection: sqlite3.Connection) -> tuple[bool, T | None]:
            now = self._clock()
            cutoff = now - self._retention
            with _transaction(connection):
                if _select_live(connection, group, [event_id], cutoff):
                    return False, None
                result = work(connection)
                connection.execute(_UPSERT, (group, event_id, now, cutoff))
            return True, result

        return await self._run(job)

    async def release(self, group: str, event_ids: Sequence[str]) -> None:
        ids = _ids(event_ids)
        if not ids:
            return

        def job(connection: sqlite3.Connection) -> None:
            with _transaction(connection):
                connection.executemany(
                    "DELETE FROM processed_events WHERE group_name = ? AND event_id = ?",
                    [(group, i) for i in ids],
                )

        await self._run(job)

    async def purge_expired(self) -> int:
        def job(connection: sqlite3.Connection) -> int:
            with _transaction(connection):
                cursor = connection.execute(
                    "DELETE FROM processed_events WHERE first_seen <= ?",
                    (self._clock() - self._retention,),
                )
            return cursor.rowcount

        return await self._run(job)

    async def close(self) -> None:
        """Close the file and stop the worker; idempotent. Later calls raise."""
        if self._closed:
            return
        self._closed = True
        for reader in self._readers:
            reader.close()
        self._readers.clear()
        executor = self._executor
        if executor is None:
            return

        def shut() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        try:
            await asyncio.get_running_loop().run_in_executor(executor, shut)
        finally:
            executor.shutdown(wait=False)

    async def _reader(self) -> sqlite3.Connection:
        """The calling thread's read connection, opened on its first read, once the worker
        has created the file and its table (it has when its connection exists)."""
        self._check_open()
        reader: sqlite3.Connection | None = getattr(self._reading, "connection", None)
        if reader is not None:
            return reader
        if self._connection is None:
            await self.open()
        try:
            reader = sqlite3.connect(
                self.path,
                timeout=_READ_BUSY_TIMEOUT,
                isolation_level=None,
                check_same_thread=False,  # only its thread reads; close() may run elsewhere
            )
        except sqlite3.Error as exc:
            raise StorageError(f"dedupe store {self.path}: {exc}") from exc
        self._reading.connection = reader
        self._readers.append(reader)
        return reader

    def _check_open(self) -> None:
        if self._closed:
            raise EventyardError(f"the dedupe store {self.path} is closed")

    async def _run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        self._check_open()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="eventyard-dedupe"
            )

        def in_worker() -> T:
            try:
                if self._connection is None:
                    self._connection = self._connect()
                return job(self._connection)
            except sqlite3.Error as exc:
                raise StorageError(f"dedupe store {self.path}: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, in_worker)

    def _connect(self) -> sqlite3.Connection:
        connection = connect_wal(self.path, timeout=30.0)
        try:
            connection.executescript(_SCHEMA)
        except BaseException:
            connection.close()
            raise
        return connection


def _select_live(
    connection: sqlite3.Connection, group: str, ids: list[str], cutoff: float
) -> set[str]:
    """Which of ``ids`` are recorded for ``group`` after ``cutoff``, a bounded query at a time."""
    live: set[str] = set()
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        rows = connection.execute(
            "SELECT event_id FROM processed_events WHERE group_name = ? "
            f"AND first_seen > ? AND event_id IN ({marks})",
            (group, cutoff, *chunk),
        )
        live.update(row[0] for row in rows)
    return live


@contextmanager
def _transaction(connection: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
    """``begin`` ... ``COMMIT``, or ``ROLLBACK`` when the block raises.

    Writes begin ``IMMEDIATE`` (the write lock first, so a claim's read and write are one
    step for every process); a read of several chunks begins deferred, for one snapshot.
    """
    connection.execute(begin)
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
