"""eventyard: event-driven architecture end to end, in Python.

The public surface a user writes against is re-exported here; the packages underneath
(``eventyard.records``, ``eventyard.storage``, ``eventyard.broker``, ``eventyard.client``)
hold the rest and are documented in ARCHITECTURE.md. The exception tree lives in
:mod:`eventyard.errors`.

Names are imported on first use (PEP 562), so ``import eventyard.records`` stays sans-io and
never pulls in asyncio through this package, and the CLI starts without loading what a
command does not need.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventyard.app import App, BreakerPolicy, Context, Publish, RetryPolicy, SQLiteDedupeStore
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
    from eventyard.events import Envelope, event
    from eventyard.records import Compression, Record
    from eventyard.storage import Durability
    from eventyard.transports import EmbeddedTransport, MemoryTransport

try:
    __version__ = version("eventyard")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

_HOMES = {
    "eventyard.app": (
        "App",
        "BreakerPolicy",
        "Context",
        "Publish",
        "RetryPolicy",
        "SQLiteDedupeStore",
    ),
    "eventyard.broker": (
        "EARLIEST",
        "LATEST",
        "Broker",
        "BrokerConfig",
        "FetchResult",
        "ProduceResult",
        "TopicConfig",
        "TopicInfo",
        "murmur2",
        "partition_for_key",
    ),
    "eventyard.client": (
        "BatchMetadata",
        "Consumer",
        "ConsumerRecord",
        "Producer",
        "ProducerRecord",
        "RecordMetadata",
        "SyncBroker",
        "SyncConsumer",
        "SyncProducer",
        "TopicPartition",
    ),
    "eventyard.errors": ("EventyardError",),
    "eventyard.events": ("Envelope", "event"),
    "eventyard.records": ("Compression", "Record"),
    "eventyard.storage": ("Durability",),
    "eventyard.transports": ("EmbeddedTransport", "MemoryTransport"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'eventyard' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME_OF])


__all__ = [
    "EARLIEST",
    "LATEST",
    "App",
    "BatchMetadata",
    "BreakerPolicy",
    "Broker",
    "BrokerConfig",
    "Compression",
    "Consumer",
    "ConsumerRecord",
    "Context",
    "Durability",
    "EmbeddedTransport",
    "Envelope",
    "EventyardError",
    "FetchResult",
    "MemoryTransport",
    "ProduceResult",
    "Producer",
    "ProducerRecord",
    "Publish",
    "Record",
    "RecordMetadata",
    "RetryPolicy",
    "SQLiteDedupeStore",
    "SyncBroker",
    "SyncConsumer",
    "SyncProducer",
    "TopicConfig",
    "TopicInfo",
    "TopicPartition",
    "__version__",
    "event",
    "murmur2",
    "partition_for_key",
]
