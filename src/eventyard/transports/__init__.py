"""eventyard.transports: how the application layer reaches a broker.

- :mod:`~eventyard.transports.base` is the interface and its delivery contract:
  :class:`Transport` (publish, ensure topics, create receivers), :class:`Receiver` (one
  consumer-group member: fetch, commit, assignment), :class:`Outgoing` (a record to publish)
  and :class:`Message` (a received record);
- :class:`MemoryTransport` keeps everything in memory, faithfully enough for unit tests;
- :class:`EmbeddedTransport` runs on the in-process, durable broker.

A Kafka transport (aiokafka) follows the same contract; the core never imports it.
"""

from eventyard.transports.base import Headers, Message, OffsetReset, Outgoing, Receiver, Transport
from eventyard.transports.embedded import EmbeddedReceiver, EmbeddedTransport
from eventyard.transports.memory import MemoryReceiver, MemoryTransport

__all__ = [
    "EmbeddedReceiver",
    "EmbeddedTransport",
    "Headers",
    "MemoryReceiver",
    "MemoryTransport",
    "Message",
    "OffsetReset",
    "Outgoing",
    "Receiver",
    "Transport",
]
