"""Produce-to-acknowledgement latency through the Kafka front at a paced 10,000 messages a
second: confluent-kafka into `eventyard serve --fsync always`, p99 against the issue's target.

`eventyard serve` runs as a subprocess on a free loopback port with a fresh data directory and
its default durability, `always`: every acknowledgement waits for the group-commit fsync that
covers the message, so the figure includes the disk's flush time. One confluent-kafka
`Producer` (`acks=all`, idempotent, librdkafka's default `linger.ms` of 5) sends 100-byte
messages on a fixed schedule: message *i* is due at start + *i* / 10,000 s. The sender wakes
about every millisecond from `poll(0.001)` (which serves delivery callbacks) and produces
every message that has fallen due, so it never spins a core the server needs. Each message's
latency runs from its scheduled time (not from when it was sent, so a late send counts against
the figure) to its delivery callback; the client's batching delay (linger) counts too, as a
user sees it. A
warm-up second is sent and discarded first. The figure is the 99th percentile; the notes give
the median, the 99.9th percentile and the maximum. A run whose sending fell more than 10%
(plus 50 ms) behind the schedule is an error, not a figure.
"""

from __future__ import annotations

import time
from typing import Any

from bench.harness import Comparison, Figure, Measurement, Scenario, Settings, Target
from bench.scenarios.kafka_payloads import QUIET, create_topic, payloads
from bench.scenarios.served import serve

__all__ = ["SCENARIO", "paced_latencies"]

RATE = 10_000
"""Messages a second."""

_TICK_S = 0.001
"""How long the sender sleeps in ``poll()`` between bursts (librdkafka's timer resolution)."""


def paced_latencies(producer: Any, topic: str, values: list[bytes], count: int) -> list[float]:
    """Send ``count`` messages at ``RATE``; each one's scheduled-to-ack seconds, in order."""
    from confluent_kafka import KafkaException

    latencies = [0.0] * count
    failed: list[Any] = []

    def delivered(index: int, scheduled: float) -> Any:
        def callback(error: Any, _message: Any) -> None:
            latencies[index] = time.perf_counter() - scheduled
            if error is not None:
                failed.append(error)

        return callback

    distinct = len(values)
    started = time.perf_counter()
    sent = 0
    while sent < count:
        due = min(count, int((time.perf_counter() - started) * RATE) + 1)
        for i in range(sent, due):
            scheduled = started + i / RATE
            producer.produce(topic, values[i % distinct], on_delivery=delivered(i, scheduled))
        sent = due
        producer.poll(_TICK_S)
    sending = time.perf_counter() - started
    left = producer.flush(30)
    if left or failed:
        raise KafkaException(f"{left} messages unacknowledged, errors: {failed[:3]}")
    if sending > 1.1 * count / RATE + 0.05:
        raise RuntimeError(f"sending {count} messages took {sending:.2f} s: below {RATE}/s")
    return latencies


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(settings: Settings) -> Measurement:
    seconds = settings.scale(3, 1)
    count = RATE * seconds
    values = payloads(settings.seed)
    with serve(settings.workdir / "kafka-latency") as served:
        from confluent_kafka import Producer

        create_topic(served.bootstrap, "bench-latency")
        errors: list[Any] = []
        producer = Producer(
            {
                "bootstrap.servers": served.bootstrap,
                **QUIET,
                "acks": "all",
                "enable.idempotence": True,
                "error_cb": errors.append,
            }
        )
        paced_latencies(producer, "bench-latency", values, settings.scale(RATE, 1000))
        latencies = paced_latencies(producer, "bench-latency", values, count)
        if errors:
            raise RuntimeError(f"the producer reported errors: {errors[:3]}")
    ordered = sorted(ms * 1000 for ms in latencies)
    p50, p99, p999 = (_quantile(ordered, q) for q in (0.5, 0.99, 0.999))
    return Measurement(
        figure=Figure(p99, "ms"),
        notes=(
            f"{count:,} messages of 100 B at {RATE:,}/s after a 1 s warm-up; "
            f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, p99.9 {p999:.2f} ms, max {ordered[-1]:.2f} ms; "
            "acks=all, idempotent, linger.ms 5; eventyard serve --fsync always",
        ),
        details={"p50_ms": p50, "p99_ms": p99, "p999_ms": p999, "max_ms": ordered[-1]},
    )


SCENARIO = Scenario(
    name="kafka-latency",
    title="Kafka front: produce-to-ack p99 at 10k msg/s",
    target=Target(Comparison.BELOW, 10.0, "ms"),
    run=run,
    method=__doc__ or "",
)
