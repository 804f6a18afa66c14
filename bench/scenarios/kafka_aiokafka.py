"""aiokafka producing 100-byte messages into `eventyard serve` against nats-py publishing the
same messages asynchronously into NATS JetStream (a file-stored stream), in the same run.

eventyard: `eventyard serve` as a subprocess on a free loopback port, fresh data directory,
default `--fsync always`; an `AIOKafkaProducer` with `acks="all"`, the idempotent producer
on and `max_batch_size` 256 KiB (the 16 KiB default costs a third of the rate here), awaiting
`send()` of every message in turn (which queues it and returns its delivery future), then
every future; the clock stops once every message is acknowledged (one warm-up message sent
before the clock starts obtains the producer id). aiokafka's batch API
(`create_batch` and `send_batch`) is timed once too, for the notes.

NATS JetStream: the server on 127.0.0.1:4222, a new file-stored stream named for the run,
`publish_async` of every message in turn (nats-py's pipelined publish, at most 4,000
acknowledgements outstanding), then `publish_async_completed()`; the clock stops once the
server has acknowledged everything. The stream is deleted afterwards.

Neither side compresses. Both clients run in the benchmark process, one at a time, sharing
the cores with their server. Each side runs twice on a fresh topic or stream, alternating;
the figure is the best run's messages per second.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import time
from collections.abc import Sequence

from bench.harness import (
    Comparison,
    Figure,
    Measurement,
    PeerFigure,
    Scenario,
    Settings,
    Target,
    rate,
    run_details,
)
from bench.peers.nats_jetstream import NatsJetStream, connect
from bench.scenarios.kafka_payloads import create_topic, payloads
from bench.scenarios.served import serve

__all__ = ["CONSUME_SCENARIO", "PRODUCE_SCENARIO"]

BATCH_BYTES = 256 * 1024
READ_BATCH = 1000


def _versions(nats: NatsJetStream | None) -> str:
    text = f"aiokafka {importlib.metadata.version('aiokafka')}"
    if nats is not None:
        text += f", nats-server {nats.server_version}, nats-py {nats.client_version}"
    return text


async def _send_each(bootstrap: str, topic: str, values: Sequence[bytes], total: int) -> float:
    """``send()`` every message, then await every delivery; the seconds it took.

    One warm-up message goes first, outside the clock (the topic ends up holding
    ``total + 1``).
    """
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        max_batch_size=BATCH_BYTES,
    )
    await producer.start()
    try:
        await (await producer.send(topic, values[0]))  # a producer id, outside the clock
        count = len(values)
        started = time.perf_counter()
        deliveries = [await producer.send(topic, values[i % count]) for i in range(total)]
        await asyncio.gather(*deliveries)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def _send_batches(bootstrap: str, topic: str, values: Sequence[bytes], total: int) -> float:
    """aiokafka's batch API: fill ``create_batch()`` batches, ``send_batch`` each."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        max_batch_size=BATCH_BYTES,
        max_request_size=2 * BATCH_BYTES,
    )
    await producer.start()
    try:
        count, sent = len(values), 0
        deliveries = []
        started = time.perf_counter()
        while sent < total:
            batch = producer.create_batch()
            while sent < total and batch.append(
                key=None, value=values[sent % count], timestamp=None
            ):
                sent += 1
            batch.close()
            deliveries.append(await producer.send_batch(batch, topic, partition=0))
        await asyncio.gather(*deliveries)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def _stored(bootstrap: str, topic: str) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        ends = await consumer.end_offsets([partition])
        return int(ends[partition])
    finally:
        await consumer.stop()


async def _read_group(bootstrap: str, topic: str, group: str, total: int) -> float:
    """A group consumer reads ``total`` messages with ``getmany``, committing after each."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + 30
        while not consumer.assignment():
            if time.monotonic() > deadline:
                raise RuntimeError("aiokafka was assigned no partition within 30 s")
            await asyncio.sleep(0.005)
        count = value_bytes = 0
        started = time.perf_counter()
        while count < total:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in fetched.values():
                for record in records:
                    value_bytes += len(record.value or b"")
                count += len(records)
            await consumer.commit()
        elapsed = time.perf_counter() - started
    finally:
        await consumer.stop()
    if count != total or not value_bytes:
        raise RuntimeError(f"aiokafka read {count} messages, {total} were stored")
    return elapsed


def _checked(side: str, total: int, result: tuple[float, int, int]) -> float:
    seconds, count, value_bytes = result
    if count != total or not value_bytes:
        raise RuntimeError(f"{side} returned {count} messages, {total} were stored")
    return seconds


async def _measure_produce(settings: Settings, total: int, repeats: int) -> Measurement:
    values = payloads(settings.seed)
    nats, unavailable = await connect(settings.nats_url, settings.key_prefix)
    kafka_runs: list[float] = []
    nats_runs: list[float] = []
    try:
        with serve(settings.workdir / "aiokafka-produce") as served:
            for attempt in range(repeats):
                if nats is not None:
                    subject = await nats.create_stream(f"produce{attempt}")
                    nats_runs.append(await nats.produce(subject, values, total))
                    if (stored := await nats.stored(subject)) != total:
                        raise RuntimeError(f"JetStream stored {stored}, {total} were published")
                topic = f"bench-aiokafka-{attempt}"
                create_topic(served.bootstrap, topic)
                kafka_runs.append(await _send_each(served.bootstrap, topic, values, total))
                if (stored := await _stored(served.bootstrap, topic)) != total + 1:
                    raise RuntimeError(f"eventyard serve stored {stored}, {total} were sent")
            create_topic(served.bootstrap, "bench-aiokafka-batches")
            batched = await _send_batches(served.bootstrap, "bench-aiokafka-batches", values, total)
    finally:
        if nats is not None:
            await nats.close()
    notes = (
        f"{total:,} unkeyed 100-byte messages, acks=all, idempotent, best of {repeats} runs "
        f"per side; aiokafka's create_batch/send_batch API: {Figure(total / batched, 'events/s')}; "
        f"eventyard serve --fsync always; JetStream file storage; {_versions(nats)}",
    )
    return Measurement(
        figure=rate(total, kafka_runs),
        peer=PeerFigure(
            "NATS JetStream publish_async",
            rate(total, nats_runs) if nats_runs else None,
            unavailable,
        ),
        notes=notes,
        details={
            **run_details(eventyard=kafka_runs, nats=nats_runs),
            "aiokafka_send_batch_s": batched,
        },
    )


async def _measure_consume(settings: Settings, total: int, repeats: int) -> Measurement:
    values = payloads(settings.seed)
    nats, unavailable = await connect(settings.nats_url, settings.key_prefix)
    kafka_runs: list[float] = []
    nats_runs: list[float] = []
    ordered: float | None = None
    topic = "bench-aiokafka-read"
    try:
        with serve(settings.workdir / "aiokafka-consume") as served:
            create_topic(served.bootstrap, topic)
            await _send_batches(served.bootstrap, topic, values, total)
            subject = ""
            if nats is not None:
                subject = await nats.create_stream("consume")
                await nats.produce(subject, values, total)
            for attempt in range(repeats):
                if nats is not None:
                    read = await nats.consume_pull(subject, total, READ_BATCH)
                    nats_runs.append(_checked("JetStream", total, read))
                group = f"bench-read-{attempt}"
                kafka_runs.append(await _read_group(served.bootstrap, topic, group, total))
            if nats is not None:
                ordered = _checked("JetStream", total, await nats.consume_ordered(subject, total))
    finally:
        if nats is not None:
            await nats.close()
    note = (
        f"{total:,} 100-byte messages; aiokafka: a consumer group, getmany(max_records=10000) "
        f"and commit() after each; JetStream: a pull consumer, fetch({READ_BATCH}) and an "
        f"AckAll ack of each batch's last message; best of {repeats} runs per side"
    )
    notes = [note, _versions(nats)]
    if ordered is not None:
        fastest = Figure(total / ordered, "events/s")
        ratio = ordered / min(kafka_runs)
        notes.append(
            f"JetStream's ordered push consumer (no acks, not durable) read at {fastest}, "
            f"aiokafka's group consumer {ratio:.2f}x that"
        )
    return Measurement(
        figure=rate(total, kafka_runs),
        peer=PeerFigure(
            "NATS JetStream pull consumer + ack",
            rate(total, nats_runs) if nats_runs else None,
            unavailable,
        ),
        notes=tuple(notes),
        details={
            **run_details(eventyard=kafka_runs, nats=nats_runs),
            **({"nats_ordered_s": ordered} if ordered is not None else {}),
        },
    )


def _produce(settings: Settings) -> Measurement:
    total = settings.scale(100_000, 2_000)
    return asyncio.run(_measure_produce(settings, total, settings.scale(2, 1)))


def _consume(settings: Settings) -> Measurement:
    total = settings.scale(100_000, 2_000)
    return asyncio.run(_measure_consume(settings, total, settings.scale(2, 1)))


PRODUCE_SCENARIO = Scenario(
    name="aiokafka-produce",
    title="Kafka front: aiokafka produce vs JetStream",
    target=Target(Comparison.RATIO_AT_LEAST, 2.0),
    run=_produce,
    method=__doc__ or "",
)

CONSUME_SCENARIO = Scenario(
    name="aiokafka-consume",
    title="Kafka front: aiokafka consume vs JetStream",
    target=Target(Comparison.RATIO_AT_LEAST, 2.0),
    run=_consume,
    method="""The messages of the aiokafka produce scenario, stored on both sides before the
clock starts (eventyard through aiokafka's batch API, JetStream through `publish_async` into a
new file-stored stream), then read back in full, the sides alternating, twice each.

eventyard: an `AIOKafkaConsumer` in a new consumer group (`auto_offset_reset="earliest"`,
auto-commit off) calls `getmany(max_records=10000)` until every message is back, touching
each value, and `commit()`s after each call. The clock starts once the group has assigned the
partition (the group's initial rebalance delay is not read throughput).

NATS JetStream: a new pull consumer with `AckPolicy.ALL` calls `fetch(1000)` until every
message is back, touching each value, and acknowledges the last message of each batch: the
durable, acknowledged read that a Kafka consumer group with commits corresponds to. The
notes add JetStream's fastest read, an ordered push consumer (no acks, not durable, one
reader), against the same aiokafka figure. The figure is each side's best run.
""",
)
