"""The scenarios of ``python -m bench``, one module each, in the order the table shows them.

1. ``produce``: in-process produce against Redis Streams ``XADD`` (target >= 3x).
2. ``consume``: in-process fetch and decode against ``XREADGROUP`` + ``XACK`` (>= 2x);
   ``consumer``: the same through ``Consumer.getmany`` in a group with commits (>= 2x).
3. ``always``: 8 concurrent producers with ``always`` durability (>= 300k events/s).
4. ``append``: `PartitionLog` append bandwidth against raw writes (>= 70% of raw).
5. ``recovery``: opening a ~1 GiB log after SIGKILL (< 2 s).
6. ``memory``: broker RSS over 10 million events (flat: < 64 MiB growth).
7. ``kafka-produce``, ``kafka-consume``: confluent-kafka through ``eventyard serve``
   (>= 200k and >= 300k messages/s).
8. ``aiokafka-produce``, ``aiokafka-consume``: aiokafka through ``eventyard serve`` against
   nats-py into NATS JetStream (>= 2x each).
9. ``kafka-latency``: produce-to-ack p99 at a paced 10k messages/s (< 10 ms).
10. ``app-handlers``, ``app-vs-batch``: an `App` with a one-event no-op handler on the
    embedded transport against FastStream's Redis Streams subscriber (>= 150k events/s, and
    >= 3x FastStream's ``batch=True``); ``app-latency``: publish-to-handler p99 at a paced
    5k events/s against redis-py ``XADD`` to ``XREADGROUP BLOCK`` (< 1 ms).
11. ``demo-latency``: the ``eventyard demo`` pipeline in one process on the embedded broker,
    listing-to-alert p99 at a paced 1,000 listing events/s (< 50 ms).

``scratch`` opens the throwaway brokers the scenarios use, ``served`` the throwaway
``eventyard serve`` subprocesses of the Kafka-front ones (``kafka_payloads`` has their
messages); ``bench.batches`` and ``bench.probes`` hold the pre-built batches and the child
processes some scenarios need.
"""

from __future__ import annotations

from bench.harness import Scenario
from bench.scenarios import (
    app_handlers,
    append_bandwidth,
    consume,
    demo_latency,
    durable_produce,
    kafka_aiokafka,
    kafka_confluent,
    kafka_latency,
    memory,
    produce,
    recovery,
)

__all__ = ["SCENARIOS"]

SCENARIOS: tuple[Scenario, ...] = (
    produce.SCENARIO,
    consume.SCENARIO,
    consume.CONSUMER_SCENARIO,
    durable_produce.SCENARIO,
    append_bandwidth.SCENARIO,
    recovery.SCENARIO,
    memory.SCENARIO,
    kafka_confluent.PRODUCE_SCENARIO,
    kafka_confluent.CONSUME_SCENARIO,
    kafka_aiokafka.PRODUCE_SCENARIO,
    kafka_aiokafka.CONSUME_SCENARIO,
    kafka_latency.SCENARIO,
    app_handlers.SCENARIO,
    app_handlers.BATCH_SCENARIO,
    app_handlers.LATENCY_SCENARIO,
    demo_latency.SCENARIO,
)
"""Every scenario, in table order."""
