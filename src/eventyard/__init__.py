"""eventyard: event-driven architecture end to end, in Python.

The public surface a user writes against is re-exported here; the packages underneath
(``eventyard.records``, ``eventyard.storage``, ``eventyard.broker``, ``eventyard.client``)
hold the rest and are documented in ARCHITECTURE.md. The exception tree lives in
:mod:`eventyard.errors`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from eventyard.broker import (
    EARLIEST,
    LATEST,
    Broker,
    BrokerConfig,
    FetchResult,
    ProduceResult,
    TopicConfig,
    TopicInfo,
    murmur2,
    partition_for_key,
)
from eventyard.client import (
    BatchMetadata,
    Consumer,
    ConsumerRecord,
    Producer,
    ProducerRecord,
    RecordMetadata,
    SyncBroker,
    SyncConsumer,
    SyncProducer,
    TopicPartition,
)
from eventyard.errors import EventyardError
from eventyard.records import Compression, Record
from eventyard.storage import Durability

try:
    __version__ = version("eventyard")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "EARLIEST",
    "LATEST",
    "BatchMetadata",
    "Broker",
    "BrokerConfig",
    "Compression",
    "Consumer",
    "ConsumerRecord",
    "Durability",
    "EventyardError",
    "FetchResult",
    "ProduceResult",
    "Producer",
    "ProducerRecord",
    "Record",
    "RecordMetadata",
    "SyncBroker",
    "SyncConsumer",
    "SyncProducer",
    "TopicConfig",
    "TopicInfo",
    "TopicPartition",
    "__version__",
    "murmur2",
    "partition_for_key",
]
