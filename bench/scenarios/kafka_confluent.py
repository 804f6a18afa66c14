"""confluent-kafka (librdkafka) producing 100-byte messages into `eventyard serve` through
the Kafka wire protocol, against the issue's absolute target (the consume scenario reads
them back).

`eventyard serve` runs as a subprocess on a free loopback port with a fresh data directory
and its default durability, `--fsync always` (a produce is acknowledged only after the
group-commit fsync that covers it). The client runs in the benchmark process, so client and
server share the machine's cores.

Produce: one `Producer` with `acks=all` and the idempotent producer on, librdkafka's
batching defaults otherwise (`linger.ms` 5, `batch.size` 1 MB), `produce()` of every message
in turn (polling when the local queue is full), then `flush()`; the clock stops once every
message is acknowledged, and the partition's high watermark must then equal the count. One
warm-up message, produced and flushed before the clock starts, connects the producer and
obtains its producer id.

The producer runs twice, on a fresh topic each time; the figure is the best run's messages
per second.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Sequence
from typing import Any

from bench.harness import (
    Comparison,
    Figure,
    Measurement,
    Scenario,
    Settings,
    Target,
    rate,
    run_details,
)
from bench.scenarios.kafka_payloads import QUIET, create_topic, payloads
from bench.scenarios.served import serve

__all__ = ["CONSUME_SCENARIO", "PRODUCE_SCENARIO", "produce_all"]

FAST_READER = {"fetch.queue.backoff.ms": 10}
"""The consumer setting of the figure (see the module docstring)."""


def _version() -> str:
    import confluent_kafka

    client, library = importlib.metadata.version("confluent-kafka"), confluent_kafka.libversion()[0]
    return f"confluent-kafka {client}, librdkafka {library}"


def produce_all(bootstrap: str, topic: str, values: Sequence[bytes], total: int) -> float:
    """Produce ``total`` messages (cycling ``values``); the seconds until all are acked.

    One warm-up message goes first, outside the clock, so the topic ends up holding
    ``total + 1``.
    """
    from confluent_kafka import KafkaException, Producer

    errors: list[Any] = []
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            **QUIET,
            "acks": "all",
            "enable.idempotence": True,
            "error_cb": errors.append,
        }
    )
    producer.produce(topic, values[0])
    producer.flush(30)  # connected, producer id assigned: the clock measures only the stream
    count = len(values)
    started = time.perf_counter()
    for i in range(total):
        value = values[i % count]
        while True:
            try:
                producer.produce(topic, value)
                break
            except BufferError:
                producer.poll(0.001)
    left = producer.flush(60)
    elapsed = time.perf_counter() - started
    if left or errors:
        raise KafkaException(f"{left} messages unacknowledged, errors: {errors[:3]}")
    _check_stored(bootstrap, topic, total + 1)
    return elapsed


def _check_stored(bootstrap: str, topic: str, total: int) -> None:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-check", **QUIET})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        consumer.close()
    if high != total:
        raise RuntimeError(f"eventyard serve stored {high} messages, {total} were produced")


def consume_all(bootstrap: str, topic: str, total: int, settings: dict[str, Any]) -> float:
    """Read ``total`` messages from offset 0 with a new consumer; the seconds it took."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            **QUIET,
            "group.id": "bench-read",
            "enable.auto.commit": False,
            **settings,
        }
    )
    count = value_bytes = 0
    try:
        started = time.perf_counter()
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = started + 120
        while count < total and time.perf_counter() < deadline:
            for message in consumer.consume(min(10_000, total - count), 1.0):
                if message.error() is not None:
                    raise KafkaException(message.error())
                value_bytes += len(message.value())
                count += 1
        elapsed = time.perf_counter() - started
    finally:
        consumer.close()
    if count < total or not value_bytes:
        raise RuntimeError(f"confluent-kafka read {count} messages, {total} were stored")
    return elapsed


def _produce(settings: Settings) -> Measurement:
    total = settings.scale(500_000, 5_000)
    repeats = settings.scale(2, 1)
    values = payloads(settings.seed)
    runs = []
    with serve(settings.workdir / "kafka-produce") as served:
        for attempt in range(repeats):
            topic = f"bench-produce-{attempt}"
            create_topic(served.bootstrap, topic)
            runs.append(produce_all(served.bootstrap, topic, values, total))
    return Measurement(
        figure=rate(total, runs),
        notes=(
            f"{total:,} unkeyed 100-byte messages, acks=all, idempotent, best of {repeats} "
            f"runs; eventyard serve --fsync always; {_version()}",
        ),
        details=run_details(eventyard=runs),
    )


def _consume(settings: Settings) -> Measurement:
    total = settings.scale(500_000, 5_000)
    repeats = settings.scale(2, 1)
    topic = "bench-consume"
    runs = []
    with serve(settings.workdir / "kafka-consume") as served:
        create_topic(served.bootstrap, topic)
        produce_all(served.bootstrap, topic, payloads(settings.seed), total - 1)
        default = consume_all(served.bootstrap, topic, total, {})
        for _ in range(repeats):
            runs.append(consume_all(served.bootstrap, topic, total, FAST_READER))
    with_defaults = Figure(total / default, "events/s")
    return Measurement(
        figure=rate(total, runs),
        notes=(
            f"{total:,} 100-byte messages read from offset 0, fetch.queue.backoff.ms=10, "
            f"best of {repeats} runs; with librdkafka's defaults {with_defaults} "
            f"(its 1 s fetch backoff at 100,000 queued messages); {_version()}",
        ),
        details={**run_details(eventyard=runs), "librdkafka_defaults_s": default},
    )


PRODUCE_SCENARIO = Scenario(
    name="kafka-produce",
    title="Kafka front: confluent-kafka produce, 100 B",
    target=Target(Comparison.AT_LEAST, 200_000, "events/s"),
    run=_produce,
    method=__doc__ or "",
)

CONSUME_SCENARIO = Scenario(
    name="kafka-consume",
    title="Kafka front: confluent-kafka consume, 100 B",
    target=Target(Comparison.AT_LEAST, 300_000, "events/s"),
    run=_consume,
    method="""The same server, client and messages as the confluent-kafka produce scenario
(one run fills the topic before the clock starts), read back from offset 0 by a new
`Consumer` per run, every value touched. librdkafka stops fetching a partition for
`fetch.queue.backoff.ms` (1 s by default) whenever its prefetch queue holds
`queued.min.messages` (100,000 by default), so a reader that drains its queue quickly idles
most of each second; the figure sets `fetch.queue.backoff.ms=10` and the notes give one run
with the defaults. Best of two runs.
""",
)
