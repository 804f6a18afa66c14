"""The synchronous wrappers: a script's round trip through a private loop thread."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from eventyard.broker import BrokerConfig, TopicConfig
from eventyard.broker.groups import GroupConfig
from eventyard.client import ConsumerRecord, SyncBroker, TopicPartition
from eventyard.errors import DataDirLockedError, TopicExistsError

CONFIG = BrokerConfig(groups=GroupConfig(initial_rebalance_delay_ms=50))


def test_round_trip(tmp_path: Path) -> None:
    with SyncBroker.open(tmp_path / "data", CONFIG) as broker:
        broker.create_topic("orders", TopicConfig(partitions=2))
        assert [t.name for t in broker.list_topics()] == ["orders"]
        with pytest.raises(TopicExistsError):
            broker.create_topic("orders")
        with broker.producer() as producer:
            sent = producer.send("orders", b"first", key=b"k")
            producer.send_batch("orders", [(b"k", f"v{i}".encode()) for i in range(9)])
        assert sent.topic == "orders"
        assert sum(p.end_offset for p in broker.describe_topic("orders").partitions) == 10
        with broker.consumer(
            "orders", group_id="billing", auto_offset_reset="earliest", heartbeat_interval_ms=50
        ) as consumer:
            records: list[ConsumerRecord] = []
            for record in consumer:
                records.append(record)
                if len(records) == 10:
                    break
            consumer.commit()
            assert records[0].value == b"first"
            assert {r.key for r in records} == {b"k"}
            tp = TopicPartition("orders", sent.partition)
            assert consumer.committed(tp) == 10
            assert consumer.position(tp) == 10
            consumer.seek(tp, 1)
            assert consumer.getone().offset == 1
        groups = broker.run(broker.broker.groups.list_groups())
        assert [g.group_id for g in groups] == ["billing"]
        broker.delete_topic("orders")
        assert broker.list_topics() == []
    assert not any(t.name == "eventyard-sync" for t in threading.enumerate())


def test_manual_assignment_and_seeks(tmp_path: Path) -> None:
    with SyncBroker.open(tmp_path / "data", CONFIG) as broker:
        producer = broker.producer()
        for i in range(5):
            producer.send("t", f"v{i}".encode(), timestamp_ms=1000 * (i + 1))
        producer.close()
        consumer = broker.consumer()
        tp = TopicPartition("t", 0)
        consumer.assign([tp])
        assert consumer.assignment() == {tp}
        consumer.seek_to_beginning()
        batch = consumer.getmany(timeout_ms=1000, max_records=2)
        assert [r.offset for r in batch[tp]] == [0, 1]
        assert consumer.seek_to_time(3500) == {tp: 3}
        assert consumer.getone().value == b"v3"
        consumer.seek_to_end()
        assert consumer.getmany(timeout_ms=50) == {}
        consumer.stop()


def test_client_exports_are_sorted_and_complete() -> None:
    import eventyard.client as client
    from eventyard.client import consumer, sync

    assert client.__all__ == sorted(client.__all__)
    for module in (consumer, sync):
        for name in module.__all__:
            assert getattr(client, name) is getattr(module, name)


def test_a_failed_open_leaves_no_thread_behind(tmp_path: Path) -> None:
    with SyncBroker.open(tmp_path / "data", CONFIG):
        before = threading.active_count()
        with pytest.raises(DataDirLockedError):
            SyncBroker.open(tmp_path / "data", CONFIG)
        assert threading.active_count() == before
