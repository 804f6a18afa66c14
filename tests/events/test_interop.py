"""Interop with the ``cloudevents`` SDK's Kafka bindings, both directions, both modes.

Two generations of the SDK's API are checked: ``cloudevents.v1.kafka`` (the 1.x API,
``cloudevents.kafka`` before 2.0, still the most used) and ``cloudevents.core.bindings.kafka``
(2.x). Our records are read by the SDK and the SDK's records are read by us.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pytest
from cloudevents.core.bindings import kafka as core_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as CoreCloudEvent
from cloudevents.v1 import kafka as v1_kafka
from cloudevents.v1.http import CloudEvent as V1CloudEvent

from eventyard.events import Envelope, EventRegistry, decode, encode, new_envelope
from eventyard.events.envelope import Header


class ListingCreated(msgspec.Struct):
    listing_id: str
    price: int


@pytest.fixture
def registry() -> EventRegistry:
    registry = EventRegistry()
    registry.event("listing.created", version=2)(ListingCreated)
    return registry


@pytest.fixture
def ours(registry: EventRegistry) -> Envelope:
    return new_envelope(
        ListingCreated("L-1", 100),
        source="/sourcing",
        subject="L-1",
        key="L-1",
        correlationid="corr-1",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        extensions={"tenant": "acme"},
        registry=registry,
    )


BINARY_DATA = b"\x00\x01binary\xff"


def sdk_headers(headers: tuple[Header, ...]) -> dict[str, bytes]:
    """Our headers as the SDK's ``KafkaMessage`` takes them (we never write null values)."""
    return {name: raw for name, raw in headers if raw is not None}


def read(message: Any) -> Envelope | None:
    """Decode an SDK ``KafkaMessage`` as a Kafka client would deliver it: the SDK's writers
    leave a ``str`` key as is, and the client sends its UTF-8 bytes."""
    key = message.key.encode() if isinstance(message.key, str) else message.key
    headers: tuple[Header, ...] = tuple(message.headers.items())
    return decode(message.value, headers, key)


def common_attributes(envelope: Envelope) -> dict[str, Any]:
    return {
        "id": envelope.id,
        "source": envelope.source,
        "type": envelope.type,
        "specversion": "1.0",
        "subject": envelope.subject,
        "correlationid": envelope.correlationid,
        "traceparent": envelope.traceparent,
        "tenant": "acme",
    }


# ---- the SDK's 1.x API reads ours


def test_v1_sdk_reads_our_binary_records(ours: Envelope) -> None:
    key, value, headers = encode(ours, "binary")
    event = v1_kafka.from_binary(v1_kafka.KafkaMessage(sdk_headers(headers), key, value))
    attributes = event.get_attributes()
    assert attributes.items() >= common_attributes(ours).items()
    assert attributes["time"] == ours.time
    assert attributes["partitionkey"] == b"L-1"  # the 1.x reader keeps the key as bytes
    assert attributes["datacontenttype"] == "application/json"
    assert attributes["dataversion"] == "2"
    assert event.get_data() == {"listing_id": "L-1", "price": 100}


def test_v1_sdk_reads_our_structured_records(ours: Envelope) -> None:
    key, value, headers = encode(ours)
    event = v1_kafka.from_structured(v1_kafka.KafkaMessage(sdk_headers(headers), key, value))
    attributes = event.get_attributes()
    assert attributes.items() >= common_attributes(ours).items()
    assert attributes["dataversion"] == 2
    assert attributes["partitionkey"] == "L-1"
    assert event.get_data() == {"listing_id": "L-1", "price": 100}
    # The 1.x reader takes datacontenttype from the content-type header, which in
    # structured mode names the format: a known quirk of that API, not of the record.
    assert attributes["datacontenttype"] == "application/cloudevents+json"


def test_v1_sdk_reads_our_base64_data(ours: Envelope) -> None:
    binary = msgspec.structs.replace(
        ours, datacontenttype="application/octet-stream", data=BINARY_DATA
    )
    key, value, headers = encode(binary)
    event = v1_kafka.from_structured(v1_kafka.KafkaMessage(sdk_headers(headers), key, value))
    assert event.get_data() == BINARY_DATA


# ---- we read the SDK's 1.x API


def v1_event(data: object, **attributes: str) -> V1CloudEvent:
    return V1CloudEvent(
        {
            "type": "listing.created",
            "source": "/crm",
            "partitionkey": "L-9",
            "dataversion": "2",
            "correlationid": "corr-9",
            **attributes,
        },
        data,
    )


def test_we_read_v1_sdk_binary_records(registry: EventRegistry) -> None:
    event = v1_event({"listing_id": "L-9", "price": 7}, datacontenttype="application/json")
    message = v1_kafka.to_binary(event)
    envelope = read(message)
    assert envelope is not None
    assert (envelope.id, envelope.source, envelope.type) == (event["id"], "/crm", event["type"])
    assert envelope.time == event["time"]
    assert envelope.partitionkey == "L-9"
    assert envelope.correlationid == "corr-9"
    assert envelope.datacontenttype == "application/json"
    assert envelope.dataversion == 2
    assert registry.decoder(ListingCreated)(envelope) == ListingCreated("L-9", 7)


def test_we_read_v1_sdk_structured_records(registry: EventRegistry) -> None:
    event = v1_event({"listing_id": "L-9", "price": 7}, datacontenttype="application/json")
    message = v1_kafka.to_structured(event)
    # The 1.x writer sends the data's content type, not the format's, in the header.
    assert message.headers == {"content-type": b"application/json"}
    envelope = read(message)
    assert envelope is not None
    assert envelope.id == event["id"]
    assert envelope.partitionkey == "L-9"
    assert envelope.datacontenttype == "application/json"
    assert envelope.dataversion == 2
    assert registry.decoder(ListingCreated)(envelope) == ListingCreated("L-9", 7)


def test_we_read_v1_sdk_base64_data() -> None:
    event = v1_event(BINARY_DATA, datacontenttype="application/octet-stream")
    message = v1_kafka.to_structured(event)
    envelope = read(message)
    assert envelope is not None
    assert envelope.data == BINARY_DATA
    binary = v1_kafka.to_binary(event, data_marshaller=lambda data: data)
    envelope = read(binary)
    assert envelope is not None
    assert envelope.data == BINARY_DATA


# ---- the SDK's 2.x API reads ours


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_core_sdk_reads_our_records(ours: Envelope, mode: str) -> None:
    key, value, headers = encode(ours, mode)  # type: ignore[arg-type]
    message = core_kafka.KafkaMessage(headers=sdk_headers(headers), key=key, value=value)
    event = core_kafka.from_kafka(message, JSONFormat())
    attributes = event.get_attributes()
    assert attributes.items() >= common_attributes(ours).items()
    assert attributes["partitionkey"] == "L-1"
    assert attributes["datacontenttype"] == "application/json"
    assert str(attributes["dataversion"]) == "2"
    assert attributes["time"] == dt.datetime.fromisoformat(ours.time or "")
    assert event.get_data() == {"listing_id": "L-1", "price": 100}


def test_core_sdk_reads_our_base64_data(ours: Envelope) -> None:
    binary = msgspec.structs.replace(
        ours, datacontenttype="application/octet-stream", data=BINARY_DATA
    )
    key, value, headers = encode(binary)
    message = core_kafka.KafkaMessage(headers=sdk_headers(headers), key=key, value=value)
    assert core_kafka.from_structured(message, JSONFormat()).get_data() == BINARY_DATA


# ---- we read the SDK's 2.x API


def core_event(
    data: dict[str, Any] | str | bytes, content_type: str = "application/json"
) -> CoreCloudEvent:
    return CoreCloudEvent(
        {
            "type": "listing.created",
            "source": "/crm",
            "subject": "L-9",
            "datacontenttype": content_type,
            "partitionkey": "L-9",
            "dataversion": 2,
            "causationid": "cause-9",
        },
        data,
    )


@pytest.mark.parametrize("to_kafka", [core_kafka.to_binary, core_kafka.to_structured])
def test_we_read_core_sdk_records(registry: EventRegistry, to_kafka: Any) -> None:
    event = core_event({"listing_id": "L-9", "price": 7})
    message = to_kafka(event, JSONFormat())
    envelope = read(message)
    assert envelope is not None
    assert envelope.id == event.get_id()
    assert envelope.time is not None
    assert dt.datetime.fromisoformat(envelope.time) == event.get_time()
    assert (envelope.subject, envelope.partitionkey) == ("L-9", "L-9")
    assert envelope.causationid == "cause-9"
    assert envelope.datacontenttype == "application/json"
    assert envelope.dataversion == 2
    assert registry.decoder(ListingCreated)(envelope) == ListingCreated("L-9", 7)


@pytest.mark.parametrize("to_kafka", [core_kafka.to_binary, core_kafka.to_structured])
def test_we_read_core_sdk_binary_and_text_data(to_kafka: Any) -> None:
    cases: list[tuple[str | bytes, str, bytes]] = [
        (BINARY_DATA, "application/octet-stream", BINARY_DATA),
        ("héllo", "text/plain", "héllo".encode()),
    ]
    for data, content_type, expected in cases:
        message = to_kafka(core_event(data, content_type), JSONFormat())
        envelope = read(message)
        assert envelope is not None
        assert envelope.data == expected
