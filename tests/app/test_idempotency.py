"""Dedupe stores: one contract, run against SQLite and memory; SQLite survives a restart."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from eventyard.app.idempotency import DedupeStore, MemoryDedupeStore, SQLiteDedupeStore
from eventyard.errors import ConfigError, EventyardError, StorageError

DAY = 86_400.0


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class DedupeStoreContract:
    """What every DedupeStore does; subclasses override only :meth:`make_store`."""

    def make_store(self, tmp_path: Path, clock: FakeClock, retention: timedelta) -> DedupeStore:
        raise NotImplementedError

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    async def store(self, tmp_path: Path, clock: FakeClock) -> AsyncIterator[DedupeStore]:
        store = self.make_store(tmp_path, clock, timedelta(days=1))
        yield store
        await store.close()

    async def test_a_claim_returns_the_new_ids_and_records_them(self, store: DedupeStore) -> None:
        assert await store.claim("g", ["a", "b", "c"]) == {"a", "b", "c"}
        assert await store.claim("g", ["b", "c", "d"]) == {"d"}
        assert await store.claim("g", ["a", "b", "c", "d"]) == set()

    async def test_duplicates_within_one_batch_count_once(self, store: DedupeStore) -> None:
        assert await store.claim("g", ["a", "a", "b", "a"]) == {"a", "b"}
        assert await store.claim("g", ["a"]) == set()

    async def test_an_empty_claim_is_a_no_op(self, store: DedupeStore) -> None:
        assert await store.claim("g", []) == set()
        await store.mark("g", [])
        await store.release("g", [])

    async def test_groups_are_independent(self, store: DedupeStore) -> None:
        assert await store.claim("billing", ["e1"]) == {"e1"}
        assert await store.claim("shipping", ["e1"]) == {"e1"}
        assert await store.seen("billing", "e1")
        assert not await store.seen("search", "e1")

    async def test_seen_and_mark_are_the_two_halves(self, store: DedupeStore) -> None:
        assert not await store.seen("g", "e1")
        await store.mark("g", ["e1", "e2"])
        assert await store.seen("g", "e1")
        assert await store.seen("g", "e2")
        await store.mark("g", ["e1"])
        assert await store.claim("g", ["e1", "e2", "e3"]) == {"e3"}

    async def test_seen_many_answers_for_a_batch(
        self, store: DedupeStore, clock: FakeClock
    ) -> None:
        assert await store.seen_many("g", []) == set()
        await store.mark("g", ["a", "b"])
        clock.now += DAY / 2
        await store.mark("g", ["c"])
        assert await store.seen_many("g", ["a", "c", "d", "a"]) == {"a", "c"}
        assert await store.seen_many("other", ["a"]) == set()
        clock.now += DAY / 2
        assert await store.seen_many("g", ["a", "b", "c"]) == {"c"}
        many = [str(i) for i in range(1_234)]
        await store.mark("g", many)
        assert await store.seen_many("g", [*many, "x"]) == set(many)

    async def test_released_ids_can_be_claimed_again(self, store: DedupeStore) -> None:
        await store.claim("g", ["a", "b"])
        await store.release("g", ["a", "never-seen"])
        assert not await store.seen("g", "a")
        assert await store.claim("g", ["a", "b"]) == {"a"}

    async def test_a_bare_string_is_refused(self, store: DedupeStore) -> None:
        with pytest.raises(TypeError, match="not one string"):
            await store.claim("g", "abc")

    async def test_two_claims_of_overlapping_ids_never_share_an_id(
        self, store: DedupeStore
    ) -> None:
        first = [f"e{i}" for i in range(0, 600)]
        second = [f"e{i}" for i in range(300, 900)]
        results = await asyncio.gather(*(store.claim("g", ids) for ids in [first, second] * 3))
        assert sum(len(result) for result in results) == 900
        assert set().union(*results) == {f"e{i}" for i in range(900)}

    async def test_ids_expire_after_the_retention(
        self, store: DedupeStore, clock: FakeClock
    ) -> None:
        await store.claim("g", ["old"])
        clock.now += DAY / 2
        await store.claim("g", ["young"])
        clock.now += DAY / 2 - 1
        assert await store.seen("g", "old")
        clock.now += 1
        assert not await store.seen("g", "old")
        assert await store.seen("g", "young")
        assert await store.claim("g", ["old", "young"]) == {"old"}

    async def test_purge_removes_only_expired_ids(
        self, store: DedupeStore, clock: FakeClock
    ) -> None:
        await store.claim("a", ["1", "2"])
        await store.claim("b", ["3"])
        clock.now += DAY / 2
        await store.claim("a", ["4"])
        assert await store.purge_expired() == 0
        clock.now += DAY / 2
        assert await store.purge_expired() == 3
        assert await store.purge_expired() == 0
        assert await store.seen("a", "4")
        assert await store.claim("a", ["1", "4"]) == {"1"}

    async def test_marking_a_live_id_keeps_its_first_seen_time(
        self, store: DedupeStore, clock: FakeClock
    ) -> None:
        await store.mark("g", ["e"])
        clock.now += DAY - 10
        await store.mark("g", ["e"])
        clock.now += 10
        assert not await store.seen("g", "e")

    async def test_a_reclaimed_expired_id_gets_a_new_retention(
        self, store: DedupeStore, clock: FakeClock
    ) -> None:
        await store.claim("g", ["e"])
        clock.now += DAY
        assert await store.claim("g", ["e"]) == {"e"}
        clock.now += DAY - 1
        assert await store.seen("g", "e")
        assert await store.purge_expired() == 0

    async def test_close_is_idempotent(self, store: DedupeStore) -> None:
        await store.claim("g", ["a"])
        await store.close()
        await store.close()

    def test_retention_must_be_positive(self, tmp_path: Path, clock: FakeClock) -> None:
        with pytest.raises(ConfigError, match="retention must be a positive timedelta"):
            self.make_store(tmp_path, clock, timedelta(0))


class TestMemoryDedupeStore(DedupeStoreContract):
    def make_store(self, tmp_path: Path, clock: FakeClock, retention: timedelta) -> DedupeStore:
        return MemoryDedupeStore(retention, clock=clock)


class TestSQLiteDedupeStore(DedupeStoreContract):
    def make_store(self, tmp_path: Path, clock: FakeClock, retention: timedelta) -> DedupeStore:
        return SQLiteDedupeStore(tmp_path / "dedupe.db", retention, clock=clock)

    async def test_claims_survive_closing_and_reopening(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        path = tmp_path / "dedupe.db"
        first = SQLiteDedupeStore(path, clock=clock)
        assert await first.claim("g", ["a", "b"]) == {"a", "b"}
        await first.close()
        second = SQLiteDedupeStore(path, clock=clock)
        try:
            assert await second.seen("g", "a")
            assert await second.claim("g", ["a", "b", "c"]) == {"c"}
        finally:
            await second.close()

    async def test_the_file_is_in_wal_mode_with_the_documented_table(self, tmp_path: Path) -> None:
        path = tmp_path / "dedupe.db"
        store = SQLiteDedupeStore(path)
        await store.open()
        await store.close()
        connection = sqlite3.connect(path)
        try:
            assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            columns = [row[1] for row in connection.execute("PRAGMA table_info(processed_events)")]
            assert columns == ["group_name", "event_id", "first_seen"]
        finally:
            connection.close()

    async def test_two_stores_on_one_file_never_share_a_claimed_id(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        path = tmp_path / "dedupe.db"
        stores = [SQLiteDedupeStore(path, clock=clock) for _ in range(2)]
        try:
            batches = [
                [f"e{i}" for i in range(start, start + 400)] for start in range(0, 2000, 200)
            ]
            results = await asyncio.gather(
                *(stores[n % 2].claim("g", batch) for n, batch in enumerate(batches))
            )
        finally:
            for store in stores:
                await store.close()
        assert sum(len(result) for result in results) == 2200
        assert set().union(*results) == {f"e{i}" for i in range(2200)}

    async def test_a_batch_larger_than_one_query_is_claimed_whole(self, tmp_path: Path) -> None:
        store = SQLiteDedupeStore(tmp_path / "dedupe.db")
        try:
            ids = [str(i) for i in range(2_345)]
            assert await store.claim("g", ids[:1000]) == set(ids[:1000])
            assert await store.claim("g", ids) == set(ids[1000:])
        finally:
            await store.close()

    async def test_a_closed_store_refuses_calls(self, tmp_path: Path) -> None:
        store = SQLiteDedupeStore(tmp_path / "dedupe.db")
        await store.close()
        with pytest.raises(EventyardError, match="is closed"):
            await store.claim("g", ["a"])
        with pytest.raises(EventyardError, match="is closed"):
            await store.seen_many("g", ["a"])

    async def test_a_read_answers_while_a_write_is_in_progress(self, tmp_path: Path) -> None:
        """Reads do not queue behind the worker thread's writes: a subscription asks before
        every batch, and a round trip through a busy event loop's worker thread took
        milliseconds. They see what was committed when they began."""
        store = SQLiteDedupeStore(tmp_path / "dedupe.db")
        entered, release = threading.Event(), threading.Event()

        def held(connection: sqlite3.Connection) -> None:
            entered.set()
            release.wait(10)

        try:
            await store.mark("g", ["a"])
            writing = asyncio.ensure_future(store.transact("g", "b", held))
            assert await asyncio.to_thread(entered.wait, 10)
            assert await asyncio.wait_for(store.seen_many("g", ["a", "b"]), 2) == {"a"}
            assert await asyncio.wait_for(store.seen("g", "b"), 2) is False
            release.set()
            assert await writing == (True, None)
            assert await store.seen_many("g", ["a", "b"]) == {"a", "b"}
        finally:
            release.set()
            await store.close()

    async def test_sqlite_failures_raise_storage_errors_naming_the_file(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "dedupe.db"
        path.write_bytes(b"this is not a database" * 100)
        store = SQLiteDedupeStore(path)
        try:
            with pytest.raises(StorageError, match=r"dedupe store .*dedupe\.db"):
                await store.claim("g", ["a"])
        finally:
            await store.close()
