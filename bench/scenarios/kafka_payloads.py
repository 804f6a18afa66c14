"""The 100-byte messages of the Kafka-front scenarios, and topic creation through the front.

Every Kafka-front scenario sends the same messages: 1,024 distinct 100-byte values drawn from
the run's seed (random bytes, so compression would gain nothing; none is used), unkeyed,
cycled as often as the workload needs.
"""

from __future__ import annotations

import random

__all__ = ["MESSAGE_BYTES", "QUIET", "create_topic", "payloads"]

MESSAGE_BYTES = 100
_DISTINCT = 1024

QUIET = {"log.connection.close": False, "log_level": 4}
"""librdkafka settings for every client: warnings only, none when the server goes away."""


def payloads(seed: int) -> list[bytes]:
    """The run's distinct message values, each ``MESSAGE_BYTES`` long."""
    rng = random.Random(seed)
    return [rng.randbytes(MESSAGE_BYTES) for _ in range(_DISTINCT)]


def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    """Create ``topic`` through the Kafka front with confluent-kafka's admin client."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=20)
