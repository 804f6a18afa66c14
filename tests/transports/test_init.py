"""The public surface of eventyard.transports: complete, sorted, and satisfied as promised."""

from __future__ import annotations

import eventyard.transports as transports
from eventyard.client import ConsumerRecord, ProducerRecord
from eventyard.transports import Message, Outgoing

CONTRACT = {
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
}


def test_all_is_the_contract_sorted_and_importable() -> None:
    assert set(transports.__all__) == CONTRACT
    assert transports.__all__ == sorted(transports.__all__)
    assert all(hasattr(transports, name) for name in transports.__all__)


def test_transport_names() -> None:
    assert (transports.MemoryTransport.name, transports.EmbeddedTransport.name) == (
        "memory",
        "embedded",
    )


def test_outgoing_has_the_producer_records_field_order() -> None:
    # The embedded transport hands Outgoing tuples to Producer.send_batch unchanged.
    assert Outgoing._fields == ProducerRecord._fields


def test_a_consumer_record_is_a_message() -> None:
    record: Message = ConsumerRecord("t", 0, 1, 2, b"k", b"v", (("h", None),))
    assert (record.topic, record.offset, record.headers) == ("t", 1, (("h", None),))
