"""The Producer against a real broker on disk: batching, placement, idempotence, lifecycle."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eventyard.broker import Broker, BrokerConfig, DefaultPartitioner, TopicConfig
from eventyard.broker.partitioner import partition_for_key
from eventyard.client.producer import BatchMetadata, Producer, ProducerRecord
from eventyard.errors import EventyardError, UnknownTopicError
from eventyard.records import BatchHeader, Compression, Record, decode_batches, split_batches


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    async with await Broker.open(tmp_path, BrokerConfig(default_durability="never")) as opened:
        yield opened


async def stored(
    broker: Broker, topic: str, partition: int
) -> tuple[list[BatchHeader], list[Record]]:
    data = (await broker.fetch(topic, partition, 0, max_bytes=64 << 20)).records
    return [header for _, header in split_batches(data)], decode_batches(data)


async def test_send_returns_where_the_record_landed(broker: Broker) -> None:
    await broker.create_topic("t", TopicConfig(partitions=2))
    async with Producer(broker) as producer:
        meta = await producer.send(
            "t", b"v", key=b"k", headers=[("h", b"1")], partition=1, timestamp_ms=1234
        )
        again = await producer.send("t", b"w", partition=1)
    assert (meta.topic, meta.partition, meta.offset, meta.timestamp) == ("t", 1, 0, 1234)
    assert again.offset == 1 and again.timestamp > 1234
    _, records = await stored(broker, "t", 1)
    first = records[0]
    assert (first.key, first.value, first.headers, first.timestamp) == (
        b"k",
        b"v",
        (("h", b"1"),),
        1234,
    )


async def test_a_bad_record_fails_alone(broker: Broker) -> None:
    await broker.create_topic("t")
    async with Producer(broker) as producer:
        good = asyncio.create_task(producer.send("t", b"fine"))
        with pytest.raises(TypeError, match="value must be bytes or None, not str"):
            await producer.send("t", "text")  # type: ignore[arg-type]
        assert (await good).offset == 0


async def test_concurrent_sends_share_one_batch(broker: Broker) -> None:
    await broker.create_topic("t")
    async with Producer(broker) as producer:
        metas = await asyncio.gather(
            *(producer.send("t", b"%d" % i, partition=0) for i in range(10))
        )
    assert [m.offset for m in metas] == list(range(10))
    headers, records = await stored(broker, "t", 0)
    assert len(headers) == 1 and headers[0].record_count == 10
    assert [r.value for r in records] == [b"%d" % i for i in range(10)]


async def test_a_full_batch_is_sent_without_waiting_for_the_rest(broker: Broker) -> None:
    await broker.create_topic("t")
    async with Producer(broker, max_batch_records=3, linger_ms=60_000) as producer:
        metas = await asyncio.wait_for(
            asyncio.gather(*(producer.send("t", b"%d" % i) for i in range(6))), 5
        )
        assert [m.offset for m in metas] == list(range(6))
        last = asyncio.create_task(producer.send("t", b"6"))
        await asyncio.sleep(0.05)
        assert not last.done()
    assert (await last).offset == 6
    headers, _ = await stored(broker, "t", 0)
    assert [h.record_count for h in headers] == [3, 3, 1]


async def test_linger_collects_sends_made_within_it(broker: Broker) -> None:
    async with Producer(broker, linger_ms=200) as producer:
        first = asyncio.create_task(producer.send("t", b"a", partition=0))
        await asyncio.sleep(0.02)
        second = asyncio.create_task(producer.send("t", b"b", partition=0))
        await asyncio.gather(first, second)
    headers, _ = await stored(broker, "t", 0)
    assert [h.record_count for h in headers] == [2]


async def test_close_sends_what_is_still_open(broker: Broker) -> None:
    producer = Producer(broker, linger_ms=60_000)
    pending = asyncio.create_task(producer.send("t", b"late", partition=0))
    await asyncio.sleep(0.01)
    await producer.close()
    assert (await pending).offset == 0
    with pytest.raises(EventyardError, match="closed"):
        await producer.send("t", b"after")


async def test_keyed_records_land_where_kafka_puts_them(broker: Broker) -> None:
    await broker.create_topic("t", TopicConfig(partitions=6))
    keys = [b"customer-%d" % i for i in range(300)]
    async with Producer(broker) as producer:
        await producer.send_batch("t", [(key, b"v-" + key) for key in keys])
        single = await producer.send("t", b"one", key=b"customer-7")
    assert single.partition == partition_for_key(b"customer-7", 6)
    for partition in range(6):
        _, records = await stored(broker, "t", partition)
        expected = [k for k in keys if partition_for_key(k, 6) == partition]
        assert [r.key for r in records if r.value != b"one"] == expected
        assert all(r.value == b"v-" + (r.key or b"") for r in records if r.value != b"one")


async def test_unkeyed_batches_stick_to_one_partition_each(broker: Broker) -> None:
    await broker.create_topic("t", TopicConfig(partitions=4))
    partitioner = DefaultPartitioner(random.Random(11))
    async with Producer(broker, partitioner=partitioner) as producer:
        placements = []
        for _ in range(6):
            results = await producer.send_batch("t", [(None, b"%d" % i) for i in range(50)])
            assert len(results) == 1 and results[0].record_count == 50
            placements.append(results[0].partition)
    assert all(a != b for a, b in itertools.pairwise(placements))


async def test_send_batch_honours_producer_records(broker: Broker) -> None:
    await broker.create_topic("t", TopicConfig(partitions=3))
    async with Producer(broker) as producer:
        results = await producer.send_batch(
            "t",
            [
                ProducerRecord(b"k", b"a", (("h", None),), 2, 77),
                ProducerRecord(None, None, partition=2),
                ProducerRecord(b"k", b"b", partition=0, timestamp_ms=5),
            ],
        )
    assert results == [BatchMetadata("t", 0, 0, 0, 1), BatchMetadata("t", 2, 0, 1, 2)]
    _, records = await stored(broker, "t", 2)
    first = records[0]
    assert (first.key, first.value, first.headers, first.timestamp) == (
        b"k",
        b"a",
        (("h", None),),
        77,
    )
    assert records[1].value is None


async def test_large_sends_are_split_by_count_and_by_size(tmp_path: Path) -> None:
    config = BrokerConfig(max_message_bytes=20_000, default_durability="never")
    async with await Broker.open(tmp_path, config) as broker:
        async with Producer(broker, max_batch_records=100) as producer:
            counted = await producer.send_batch("t", [(None, b"x") for _ in range(250)])
            assert [r.record_count for r in counted] == [100, 100, 50]
            sized = await producer.send_batch("t", [(None, bytes(1000)) for _ in range(60)])
        assert sum(r.record_count for r in sized) == 60
        assert len(sized) > 3
        headers, records = await stored(broker, "t", 0)
        assert len(records) == 310
        assert all(h.size <= 20_000 for h in headers)


async def test_idempotent_batches_carry_producer_id_and_sequences(broker: Broker) -> None:
    await broker.create_topic("t", TopicConfig(partitions=2))
    async with Producer(broker, compression=Compression.GZIP) as producer:
        await producer.send_batch(
            "t",
            [ProducerRecord(None, b"a", partition=0)] * 3
            + [ProducerRecord(None, b"p", partition=1)],
        )
        await producer.send_batch("t", [ProducerRecord(None, b"q", partition=1)] * 4)
        await producer.send("t", b"z", partition=1)
        producer_id = producer.producer_id
    assert producer_id >= 0
    headers, records = await stored(broker, "t", 1)
    assert [(h.producer_id, h.base_sequence, h.record_count) for h in headers] == [
        (producer_id, 0, 1),
        (producer_id, 1, 4),
        (producer_id, 5, 1),
    ]
    assert all(h.compression == Compression.GZIP for h in headers)
    assert [r.value for r in records] == [b"p", b"q", b"q", b"q", b"q", b"z"]


async def test_a_failed_batch_costs_the_producer_id_not_later_batches(broker: Broker) -> None:
    await broker.create_topic("t", TopicConfig(partitions=1))
    async with Producer(broker) as producer:
        await producer.send("t", b"a")
        first_id = producer.producer_id
        with pytest.raises(UnknownTopicError):
            await producer.send("t", b"lost", partition=5)
        await producer.send("t", b"b")
        assert producer.producer_id != first_id
    _, records = await stored(broker, "t", 0)
    assert [r.value for r in records] == [b"a", b"b"]


async def test_non_idempotent_producer_sends_plain_batches(broker: Broker) -> None:
    async with Producer(broker, idempotent=False) as producer:
        await producer.send_batch("t", [(b"k", b"v")])
        assert producer.producer_id == -1
    headers, _ = await stored(broker, "t", 0)
    assert (headers[0].producer_id, headers[0].base_sequence) == (-1, -1)


async def test_always_with_eight_concurrent_producers(tmp_path: Path) -> None:
    config = BrokerConfig(default_durability="always")
    async with await Broker.open(tmp_path, config) as broker:
        await broker.create_topic("t", TopicConfig(partitions=2))

        async def run(n: int) -> int:
            async with Producer(broker) as producer:
                total = 0
                for i in range(10):
                    results = await producer.send_batch(
                        "t", [(b"%d-%d-%d" % (n, i, j), b"v") for j in range(50)]
                    )
                    total += sum(r.record_count for r in results)
                return total

        assert sum(await asyncio.gather(*(run(n) for n in range(8)))) == 4000
        info = broker.describe_topic("t")
        assert sum(p.end_offset for p in info.partitions) == 4000
