"""eventyard.broker: the embedded broker (asyncio) over ``eventyard.storage``.

:class:`Broker` owns a data directory: topics of partitions (one owner per partition),
produce with idempotent-producer checks and durability policies, fetch with long-poll,
offset lookups, and the consumer-group coordinator (``broker.groups``). Record placement
(:func:`murmur2`, :func:`partition_for_key`, the sticky partitioner) is Kafka's.
"""

from eventyard.broker.broker import EARLIEST, LATEST, Broker, FetchRequest
from eventyard.broker.config import DEFAULT_DURABILITY, BrokerConfig, TopicConfig
from eventyard.broker.partition import FetchResult, ProduceResult
from eventyard.broker.partitioner import (
    DefaultPartitioner,
    Partitioner,
    StickyPartitioner,
    murmur2,
    partition_for_key,
)
from eventyard.broker.topics import PartitionInfo, TopicInfo

__all__ = [
    "DEFAULT_DURABILITY",
    "EARLIEST",
    "LATEST",
    "Broker",
    "BrokerConfig",
    "DefaultPartitioner",
    "FetchRequest",
    "FetchResult",
    "PartitionInfo",
    "Partitioner",
    "ProduceResult",
    "StickyPartitioner",
    "TopicConfig",
    "TopicInfo",
    "murmur2",
    "partition_for_key",
]
