"""Synchronous wrappers for scripts and notebooks: the asyncio objects on a private loop.

:class:`SyncBroker` opens a :class:`~eventyard.broker.Broker` on an event loop running in
one daemon thread it owns; every call is handed to that loop and waited for, so the asyncio
objects keep their single owner and callers need no ``await``::

    with SyncBroker.open("./.eventyard") as broker:
        broker.create_topic("orders")
        producer = broker.producer()
        producer.send("orders", b"hello", key=b"k1")
        consumer = broker.consumer("orders", group_id="billing", auto_offset_reset="earliest")
        for tp, records in consumer.getmany(timeout_ms=1000).items():
            ...
        consumer.commit()

The wrappers only forward: behaviour and errors are the asyncio classes'. Interrupting a
blocking call (Ctrl-C) cancels the coroutine on the loop before the interrupt propagates.
Anything not wrapped runs through :meth:`SyncBroker.run`, e.g.
``broker.run(broker.broker.groups.list_groups())``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from eventyard.broker import Broker, BrokerConfig, TopicConfig, TopicInfo
from eventyard.client.consumer import CommitOffsets, Consumer, ConsumerRecord, TopicPartition
from eventyard.client.producer import BatchMetadata, Pair, Producer, RecordMetadata

__all__ = ["SyncBroker", "SyncConsumer", "SyncProducer"]

T = TypeVar("T")


class _LoopThread:
    """An event loop running forever in one daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="eventyard-sync", daemon=True
        )
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and wait for its result."""
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("a sync wrapper was called from its own event loop; await instead")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        """Join the loop's worker threads, stop the loop and join its thread."""
        self.call(self.loop.shutdown_default_executor())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


async def _build(factory: Callable[[], T]) -> T:
    """Construct an asyncio object on the loop thread (some bind the running loop)."""
    return factory()


class SyncBroker:
    """A :class:`Broker` driven from synchronous code (see the module docstring)."""

    def __init__(self, runner: _LoopThread, broker: Broker) -> None:
        self._runner = runner
        self.broker = broker
        """The asyncio broker; use it through :meth:`run`."""

    @classmethod
    def open(cls, data_dir: str | Path, config: BrokerConfig | None = None) -> SyncBroker:
        """Start a private loop thread and open the broker on it (``Broker.open``)."""
        runner = _LoopThread()
        try:
            broker = runner.call(Broker.open(data_dir, config))
        except BaseException:
            runner.stop()
            raise
        return cls(runner, broker)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run any coroutine on the broker's loop and return its result."""
        return self._runner.call(coroutine)

    def close(self) -> None:
        """Close the broker and stop the loop thread."""
        try:
            self._runner.call(self.broker.close())
        finally:
            self._runner.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def create_topic(self, name: str, config: TopicConfig | None = None) -> TopicInfo:
        """Create a topic (``Broker.create_topic``)."""
        return self.run(self.broker.create_topic(name, config))

    def delete_topic(self, name: str) -> None:
        """Delete a topic and its data."""
        self.run(self.broker.delete_topic(name))

    def list_topics(self) -> list[TopicInfo]:
        """Every topic, sorted by name."""
        return self.run(_build(self.broker.list_topics))

    def describe_topic(self, name: str) -> TopicInfo:
        """A topic's config and per-partition offsets."""
        return self.run(_build(lambda: self.broker.describe_topic(name)))

    def producer(self, **options: Any) -> SyncProducer:
        """A :class:`SyncProducer`; ``options`` are :class:`Producer`'s."""
        return SyncProducer(
            self._runner, self.run(_build(lambda: Producer(self.broker, **options)))
        )

    def consumer(self, *topics: str, **options: Any) -> SyncConsumer:
        """A started :class:`SyncConsumer`; ``options`` are :class:`Consumer`'s."""
        consumer = self.run(_build(lambda: Consumer(self.broker, *topics, **options)))
        self.run(consumer.start())
        return SyncConsumer(self._runner, consumer)


class SyncProducer:
    """A :class:`Producer` driven from synchronous code."""

    def __init__(self, runner: _LoopThread, producer: Producer) -> None:
        self._runner = runner
        self.producer = producer

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes | None]] = (),
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> RecordMetadata:
        """Send one record and wait for its acknowledgement."""
        return self._runner.call(
            self.producer.send(topic, value, key, headers, partition, timestamp_ms)
        )

    def send_batch(self, topic: str, records: Iterable[Pair]) -> list[BatchMetadata]:
        """Send many records, one batch per partition."""
        return self._runner.call(self.producer.send_batch(topic, list(records)))

    def flush(self) -> None:
        """Wait until everything sent so far is acknowledged."""
        self._runner.call(self.producer.flush())

    def close(self) -> None:
        """Send what is still open and close."""
        self._runner.call(self.producer.close())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class SyncConsumer:
    """A started :class:`Consumer` driven from synchronous code.

    Iterating yields records as they arrive and blocks while there are none; ``break`` out
    of the loop, then :meth:`stop`.
    """

    def __init__(self, runner: _LoopThread, consumer: Consumer) -> None:
        self._runner = runner
        self.consumer = consumer

    def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Records fetched within ``timeout_ms`` (``Consumer.getmany``)."""
        return self._runner.call(
            self.consumer.getmany(*partitions, timeout_ms=timeout_ms, max_records=max_records)
        )

    def getone(self, *partitions: TopicPartition) -> ConsumerRecord:
        """The next record, waiting as long as it takes."""
        return self._runner.call(self.consumer.getone(*partitions))

    def __iter__(self) -> Iterator[ConsumerRecord]:
        while True:
            for records in self.getmany(timeout_ms=1000).values():
                yield from records

    def commit(self, offsets: CommitOffsets | None = None) -> None:
        """Commit ``offsets`` (default: the current positions)."""
        self._runner.call(self.consumer.commit(offsets))

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly ``partitions``."""
        self._runner.call(_build(lambda: self.consumer.assign(list(partitions))))

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer reads now."""
        return self._runner.call(_build(self.consumer.assignment))

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make ``offset`` the next offset returned from ``tp``."""
        self._runner.call(_build(lambda: self.consumer.seek(tp, offset)))

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Move to the log start of ``partitions`` (default: all assigned)."""
        self._runner.call(self.consumer.seek_to_beginning(*partitions))

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Move to the log end of ``partitions`` (default: all assigned)."""
        self._runner.call(self.consumer.seek_to_end(*partitions))

    def seek_to_time(
        self, timestamp_ms: int, *partitions: TopicPartition
    ) -> dict[TopicPartition, int]:
        """Move to the first record at or after ``timestamp_ms``."""
        return self._runner.call(self.consumer.seek_to_time(timestamp_ms, *partitions))

    def position(self, tp: TopicPartition) -> int:
        """The offset of the next record to return from ``tp``."""
        return self._runner.call(self.consumer.position(tp))

    def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset for ``tp``."""
        return self._runner.call(self.consumer.committed(tp))

    def stop(self) -> None:
        """Commit (with auto-commit), leave the group and stop."""
        self._runner.call(self.consumer.stop())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
