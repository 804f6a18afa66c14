"""The embedded broker: topics of partitions, produce, fetch with long-poll, consumer groups.

``Broker.open`` takes the data directory's exclusive lock, loads the topic catalog, opens
every partition log (recovering a torn tail if the last run crashed) and the group
coordinator, and starts the background retention/compaction pass. Every operation is a
coroutine on one event loop, except pure in-memory lookups (:meth:`Broker.list_topics`,
:meth:`Broker.describe_topic`); blocking storage work runs in worker threads. Each partition
is owned by its :class:`~eventyard.broker.partition.Partition`; the broker routes requests
to it and serializes topic creation and deletion.

Layout of the data directory::

    .lock                    storage.DataDirLock (pid and host of the owner)
    topics.json              the topic catalog (atomic rewrite)
    producer_ids.json        the reserved block of producer ids (atomic rewrite)
    __consumer_offsets/      the group coordinator's offsets log
    <topic>-<partition>/     one directory per partition, Kafka's segment files
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from eventyard.broker.config import BrokerConfig, TopicConfig
from eventyard.broker.groups.coordinator import GroupCoordinator
from eventyard.broker.partition import FetchResult, Partition, ProduceResult
from eventyard.broker.producers import ProducerIdAllocator
from eventyard.broker.topics import (
    PartitionInfo,
    TopicCatalog,
    TopicInfo,
    orphan_directories,
    partition_directory,
)
from eventyard.errors import (
    BrokerError,
    EventyardError,
    OffsetOutOfRangeError,
    StorageError,
    TopicExistsError,
    UnknownTopicError,
)
from eventyard.storage import DataDirLock, PartitionLog

__all__ = ["EARLIEST", "LATEST", "Broker", "FetchRequest"]

logger = logging.getLogger("eventyard.broker")

LATEST: Final = -1
"""``list_offset`` timestamp asking for the log end offset."""
EARLIEST: Final = -2
"""``list_offset`` timestamp asking for the log start offset."""
DEFAULT_FETCH_BYTES: Final = 1 << 20
DEFAULT_FETCH_MANY_BYTES: Final = 50 << 20


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """One partition of a :meth:`Broker.fetch_many` call."""

    topic: str
    partition: int
    offset: int
    max_bytes: int = DEFAULT_FETCH_BYTES


class Broker:
    """An embedded, durable event broker over one data directory (see the module docstring).

    Use ``async with await Broker.open(path) as broker:`` or call :meth:`close`.
    """

    def __init__(
        self,
        data_dir: Path,
        config: BrokerConfig,
        lock: DataDirLock,
        catalog: TopicCatalog,
        producer_ids: ProducerIdAllocator,
        groups: GroupCoordinator,
    ) -> None:
        """Assemble an opened broker; use :meth:`open`."""
        self.data_dir = data_dir
        self.config = config
        self.groups = groups
        self._lock = lock
        self._catalog = catalog
        self._producer_ids = producer_ids
        self._topics: dict[str, list[Partition]] = {}
        self._admin = asyncio.Lock()
        self._maintenance = asyncio.Lock()
        self._maintenance_task: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def open(cls, data_dir: str | Path, config: BrokerConfig | None = None) -> Broker:
        """Lock ``data_dir`` (creating it), recover every topic and start the broker.

        Raises ``DataDirLockedError`` when another broker holds the directory.
        """
        config = config if config is not None else BrokerConfig()
        path = Path(data_dir)
        fs = config.fs

        def prepare() -> tuple[DataDirLock, TopicCatalog, ProducerIdAllocator]:
            try:
                fs.makedirs(str(path))
            except OSError as exc:
                raise StorageError(f"cannot create data directory {path}: {exc}") from exc
            lock = DataDirLock(str(path), fs)
            try:
                catalog = TopicCatalog(path, fs)
                producer_ids = ProducerIdAllocator(path / "producer_ids.json", fs)
                orphans = orphan_directories(fs.listdir(str(path)), catalog)
            except BaseException:
                lock.release()
                raise
            if orphans:
                logger.warning(
                    "partition directories of no topic in %s (a delete was interrupted; "
                    "they are removed when a topic of that name is created): %s",
                    path,
                    ", ".join(orphans),
                )
            return lock, catalog, producer_ids

        lock, catalog, producer_ids = await asyncio.to_thread(prepare)
        try:
            groups = await GroupCoordinator.open(path / "__consumer_offsets", config.groups, fs=fs)
        except BaseException:
            lock.release()
            raise
        broker = cls(path, config, lock, catalog, producer_ids, groups)
        try:
            for name in catalog.names():
                broker._topics[name] = await broker._open_partitions(name)
        except BaseException:
            await broker.close()
            raise
        broker._maintenance_task = asyncio.get_running_loop().create_task(
            broker._maintenance_loop()
        )
        return broker

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Flush and close every partition and the coordinator, then release the lock."""
        if self._closed:
            return
        self._closed = True
        if self._maintenance_task is not None:
            self._maintenance_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance_task
        try:
            async with self._maintenance:
                partitions = [p for ps in self._topics.values() for p in ps]
                self._topics = {}
                outcomes: list[BaseException | None] = list(
                    await asyncio.gather(*(p.close() for p in partitions), return_exceptions=True)
                )
                try:
                    await self.groups.close()
                except Exception as exc:
                    outcomes.append(exc)
        finally:
            await asyncio.to_thread(self._lock.release)
        for outcome in outcomes:
            if outcome is not None:
                raise outcome

    # -- topics --------------------------------------------------------------------------

    async def _open_partitions(self, name: str) -> list[Partition]:
        meta = self._catalog.get(name)
        log_config = meta.config.to_log_config(self.config.default_durability)
        opened = []
        try:
            for index in range(meta.config.partitions):
                opened.append(
                    await Partition.open(
                        name,
                        index,
                        partition_directory(self.data_dir, name, index),
                        log_config,
                        fs=self.config.fs,
                        max_message_bytes=self.config.max_message_bytes,
                    )
                )
        except BaseException:
            for partition in opened:
                await partition.close()
            raise
        return opened

    async def create_topic(self, name: str, config: TopicConfig | None = None) -> TopicInfo:
        """Create a topic (``TopicExistsError``, ``InvalidTopicError`` on a bad name)."""
        self._check_open()
        if config is None:
            config = TopicConfig(partitions=self.config.default_partitions)
        async with self._admin:
            self._catalog.check_new(name)
            await asyncio.to_thread(self._remove_stale_directories, name, config.partitions)
            await asyncio.to_thread(self._catalog.add, name, config)
            self._topics[name] = await self._open_partitions(name)
        return self.describe_topic(name)

    def _remove_stale_directories(self, name: str, partitions: int) -> None:
        fs = self.config.fs
        for index in range(partitions):
            directory = partition_directory(self.data_dir, name, index)
            if fs.exists(str(directory)):
                logger.warning("removing stale partition directory %s", directory)
                PartitionLog.open(str(directory), TopicConfig().to_log_config(), fs=fs).delete()

    async def delete_topic(self, name: str) -> None:
        """Delete a topic and its data (``UnknownTopicError`` if absent)."""
        self._check_open()
        async with self._admin:
            self._catalog.get(name)
            async with self._maintenance:
                await asyncio.to_thread(self._catalog.remove, name)
                partitions = self._topics.pop(name, [])
                for partition in partitions:
                    await partition.delete()

    async def ensure_topic(self, name: str) -> TopicInfo:
        """Return the topic, creating it with the defaults when auto-creation is allowed."""
        if name not in self._topics:
            if not self.config.auto_create_topics:
                raise UnknownTopicError(f"unknown topic {name!r}")
            with contextlib.suppress(TopicExistsError):
                await self.create_topic(name)
        return self.describe_topic(name)

    def has_topic(self, name: str) -> bool:
        """Whether the topic exists now."""
        return name in self._topics

    def list_topics(self) -> list[TopicInfo]:
        """Every topic, sorted by name."""
        return [self.describe_topic(name) for name in sorted(self._topics)]

    def describe_topic(self, name: str) -> TopicInfo:
        """A topic's effective config and per-partition offsets and sizes."""
        partitions = self._partitions(name)
        meta = self._catalog.get(name)
        return TopicInfo(
            name=name,
            config=meta.config.with_durability(self.config.default_durability),
            partitions=tuple(
                PartitionInfo(p.index, p.log.start_offset, p.high_watermark, p.log.size_bytes)
                for p in partitions
            ),
            created_ms=meta.created_ms,
        )

    def partition_count(self, name: str) -> int:
        """The number of partitions of ``name`` (``UnknownTopicError`` if absent)."""
        return len(self._partitions(name))

    def _partitions(self, name: str) -> list[Partition]:
        try:
            return self._topics[name]
        except KeyError:
            raise UnknownTopicError(f"unknown topic {name!r}") from None

    def _partition(self, topic: str, index: int) -> Partition:
        partitions = self._partitions(topic)
        if not 0 <= index < len(partitions):
            raise UnknownTopicError(
                f"topic {topic!r} has no partition {index} (it has {len(partitions)})"
            )
        return partitions[index]

    def _check_open(self) -> None:
        if self._closed:
            raise BrokerError("the broker is closed")

    # -- produce and fetch ---------------------------------------------------------------

    async def produce(self, topic: str, partition: int, batch: bytes) -> ProduceResult:
        """Append one payload of record batches to a partition, per its durability policy.

        A missing topic is created with the defaults when ``auto_create_topics`` is set.
        Raises ``UnknownTopicError``, ``MessageTooLargeError``, ``CorruptRecordError``, the
        ``ProducerError``s of idempotence, or ``StorageError``.
        """
        if topic not in self._topics:
            self._check_open()
            await self.ensure_topic(topic)
        result, durable = self._partition(topic, partition).append(batch)
        if durable is not None:
            await durable
        return result

    def append(
        self, topic: str, partition: int, batch: bytes
    ) -> tuple[ProduceResult, asyncio.Future[None] | None]:
        """The synchronous half of :meth:`produce`, for producers that pipeline.

        Validates and appends now, so payloads are appended in call order (an idempotent
        producer's batches must arrive in sequence order); returns the offsets and, when the
        topic's policy is ``always``, a future to await before the append counts as
        acknowledged. Never creates topics (``UnknownTopicError``).
        """
        return self._partition(topic, partition).append(batch)

    async def init_producer_id(self) -> tuple[int, int]:
        """Return a new, durable ``(producer_id, producer_epoch)`` for an idempotent producer."""
        self._check_open()
        return await asyncio.to_thread(self._producer_ids.allocate)

    async def fetch(
        self,
        topic: str,
        partition: int,
        offset: int,
        *,
        max_bytes: int = DEFAULT_FETCH_BYTES,
        max_wait_ms: int = 0,
        min_bytes: int = 1,
    ) -> FetchResult:
        """Read batches from ``offset``; wait up to ``max_wait_ms`` for ``min_bytes``.

        Raises ``UnknownTopicError`` or ``OffsetOutOfRangeError``.
        """
        (result,) = await self.fetch_many(
            [FetchRequest(topic, partition, offset, max_bytes)],
            max_wait_ms=max_wait_ms,
            min_bytes=min_bytes,
            max_bytes=max_bytes,
        )
        if result.error is not None:
            raise result.error
        return result

    async def fetch_many(
        self,
        requests: Sequence[FetchRequest],
        *,
        max_wait_ms: int = 0,
        min_bytes: int = 1,
        max_bytes: int = DEFAULT_FETCH_MANY_BYTES,
        interrupt: asyncio.Future[None] | None = None,
    ) -> list[FetchResult]:
        """Kafka's Fetch: read every requested partition, long-polling for ``min_bytes``.

        Returns one result per request, in order, as soon as the results hold ``min_bytes``
        in total, a partition has an error, or ``max_wait_ms`` has passed. The response
        holds at most ``max_bytes`` (and each partition its ``max_bytes``), except that the
        first batch found is always returned whole. A partition's failure (unknown topic or
        partition, offset out of range, a storage error such as a damaged segment) is
        reported in its result's ``error``, so one partition cannot fail the others. Closing
        the broker, or ``interrupt`` completing, ends a wait with what was read before it.

        The wait is one future that an append to any of the partitions, the deadline's timer
        and ``interrupt`` complete, awaited directly: no task and no ``asyncio.wait``, so the
        fetching coroutine resumes in the first event-loop turn after the append.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait_ms / 1000
        while True:
            results, total, partitions = self._read_many(requests, max_bytes)
            remaining = deadline - loop.time()
            if total >= min_bytes or remaining <= 0 or not partitions:
                return results
            if any(result.error is not None for result in results):
                return results
            if interrupt is not None and interrupt.done():
                return results
            waiter: asyncio.Future[None] = loop.create_future()
            for partition in partitions:
                partition.add_waiter(waiter)
            timer = loop.call_later(remaining, _release, waiter)
            if interrupt is not None:
                interrupt.add_done_callback(waiter_release := _releaser(waiter))
            try:
                await waiter
            finally:
                timer.cancel()
                if interrupt is not None:
                    interrupt.remove_done_callback(waiter_release)
                for partition in partitions:
                    partition.remove_waiter(waiter)
                waiter.cancel()
            if self._closed or (interrupt is not None and interrupt.done()):
                return results

    def _read_many(
        self, requests: Sequence[FetchRequest], max_bytes: int
    ) -> tuple[list[FetchResult], int, list[Partition]]:
        results = []
        partitions = []
        total = 0
        for request in requests:
            try:
                partition = self._partition(request.topic, request.partition)
                partitions.append(partition)
                budget = min(request.max_bytes, max_bytes - total)
                if budget <= 0 and total:
                    data = b""
                else:
                    data = partition.read(request.offset, max(budget, 1))
                    if len(data) > budget and total:
                        data = b""
            except (UnknownTopicError, OffsetOutOfRangeError, StorageError) as exc:
                results.append(FetchResult(b"", -1, -1, exc))
                continue
            total += len(data)
            results.append(FetchResult(data, partition.high_watermark, partition.log.start_offset))
        return results, total, partitions

    async def list_offset(self, topic: str, partition: int, timestamp: int) -> int | None:
        """Kafka's ListOffsets: ``LATEST`` (-1) the end offset, ``EARLIEST`` (-2) the start
        offset, else the first offset whose timestamp is ``>= timestamp`` (``None`` if none).
        """
        owner = self._partition(topic, partition)
        if timestamp == LATEST:
            return owner.high_watermark
        if timestamp == EARLIEST:
            return owner.log.start_offset
        offset = await asyncio.to_thread(owner.log.offset_for_time, timestamp)
        if offset is None or offset >= owner.high_watermark:
            return None
        return offset

    async def flush(self) -> None:
        """Make everything appended so far durable, whatever each topic's policy."""
        await asyncio.gather(*(p.flush() for ps in self._topics.values() for p in ps))

    # -- background work -----------------------------------------------------------------

    async def _maintenance_loop(self) -> None:
        interval = self.config.retention_check_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await self.run_maintenance()
            except Exception:
                logger.exception("retention/compaction pass failed")

    async def run_maintenance(self) -> None:
        """Expire idle producers, then enforce retention and compact every partition in a
        worker thread. The background task calls this every ``retention_check_interval_ms``.
        """
        async with self._maintenance:
            now_ms = int(time.time() * 1000)
            expired_before = now_ms - self.config.producer_id_expiration_ms
            work: list[tuple[PartitionLog, bool, bool]] = []
            for name, partitions in self._topics.items():
                policy = self._catalog.get(name).config.cleanup_policy
                for partition in partitions:
                    partition.expire_producers(expired_before)
                    work.append((partition.log, "delete" in policy, "compact" in policy))

            def run() -> None:
                for log, deletes, compacts in work:
                    try:
                        if deletes:
                            log.enforce_retention(now_ms)
                        if compacts:
                            log.compact(now_ms)
                    except EventyardError as exc:
                        # One partition's failure (e.g. a poisoned log) must not stop the
                        # pass for the others; the partition reports it on its next use.
                        logger.error("retention/compaction of %s failed: %s", log.directory, exc)

            await asyncio.to_thread(run)


def _release(waiter: asyncio.Future[None]) -> None:
    """End a fetch's wait (its deadline passed), unless something else ended it first."""
    if not waiter.done():
        waiter.set_result(None)


def _releaser(waiter: asyncio.Future[None]) -> Callable[[asyncio.Future[None]], None]:
    """A done-callback for an interrupt future that ends ``waiter``'s wait."""
    return lambda _: _release(waiter)
