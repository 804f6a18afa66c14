"""eventyard.transports: how the application layer reaches a broker.

- :mod:`~eventyard.transports.base` is the interface and its delivery contract:
  :class:`Transport` (publish, ensure topics, create receivers), :class:`Receiver` (one
  consumer-group member: fetch, commit, assignment), :class:`Outgoing` (a record to publish)
  and :class:`Message` (a received record);
- :class:`MemoryTransport` keeps everything in memory, faithfully enough for unit tests;
- :class:`EmbeddedTransport` runs on the in-process, durable broker;
- :class:`KafkaTransport` runs on any Kafka-protocol cluster through aiokafka, an optional
  extra (``pip install 'eventyard[kafka]'``). It is exported lazily: importing this package
  never imports aiokafka, and neither does importing ``KafkaTransport``; constructing one
  without aiokafka raises ``MissingDependencyError`` with the install hint.
"""

from typing import TYPE_CHECKING, Any

from eventyard.transports.base import Headers, Message, OffsetReset, Outgoing, Receiver, Transport
from eventyard.transports.embedded import EmbeddedReceiver, EmbeddedTransport
from eventyard.transports.memory import MemoryReceiver, MemoryTransport

if TYPE_CHECKING:
    from eventyard.transports.kafka import KafkaReceiver, KafkaTransport

__all__ = [
    "EmbeddedReceiver",
    "EmbeddedTransport",
    "Headers",
    "KafkaReceiver",
    "KafkaTransport",
    "MemoryReceiver",
    "MemoryTransport",
    "Message",
    "OffsetReset",
    "Outgoing",
    "Receiver",
    "Transport",
]

_LAZY = {"KafkaReceiver", "KafkaTransport"}


def __getattr__(name: str) -> Any:
    """Load the Kafka transport's module on first use (it imports aiokafka only when used)."""
    if name in _LAZY:
        from eventyard.transports import kafka

        value = globals()[name] = getattr(kafka, name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
