"""The envelope and its factory: ids, times, registered and raw data, argument checks."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import pytest

from eventyard.events import Envelope, EventRegistry, new_envelope, new_event_id, rfc3339_now
from eventyard.events.envelope import check_envelope, check_extension_name


class Pinged(msgspec.Struct):
    n: int


@pytest.fixture
def registry() -> EventRegistry:
    registry = EventRegistry()
    registry.event("pinged", version=4)(Pinged)
    return registry


def test_event_ids_are_time_ordered_uuid7s() -> None:
    ids = [new_event_id() for _ in range(200)]
    assert len(set(ids)) == 200
    for event_id in ids:
        parsed = uuid.UUID(event_id)
        assert str(parsed) == event_id
        assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    millis = [uuid.UUID(i).int >> 80 for i in ids]
    assert millis == sorted(millis)
    now_ms = dt.datetime.now(dt.UTC).timestamp() * 1000
    assert abs(millis[-1] - now_ms) < 5_000


def test_times_are_rfc3339_utc_with_microseconds() -> None:
    stamp = rfc3339_now()
    assert stamp.endswith("Z")
    assert len(stamp) == len("2024-05-01T12:00:00.000000Z")
    parsed = dt.datetime.fromisoformat(stamp)
    assert parsed.tzinfo == dt.UTC
    assert abs((dt.datetime.now(dt.UTC) - parsed).total_seconds()) < 5


def test_a_registered_event(registry: EventRegistry) -> None:
    envelope = new_envelope(
        Pinged(1),
        source="/tests",
        subject="s",
        key="k",
        correlationid="c",
        causationid="p",
        traceparent="t",
        extensions={"tenant": "acme"},
        registry=registry,
    )
    assert (envelope.type, envelope.dataversion, envelope.data) == ("pinged", 4, b'{"n":1}')
    assert (envelope.partitionkey, envelope.subject, envelope.extensions) == (
        "k",
        "s",
        {"tenant": "acme"},
    )
    assert (envelope.correlationid, envelope.causationid, envelope.traceparent) == ("c", "p", "t")
    assert envelope.datacontenttype == "application/json"
    assert envelope.specversion == "1.0"
    assert envelope.time is not None
    assert uuid.UUID(envelope.id).int >> 80 == int(
        dt.datetime.fromisoformat(envelope.time).timestamp() * 1000
    )
    check_envelope(envelope)


def test_bytes_and_unregistered_objects_need_a_type(registry: EventRegistry) -> None:
    raw = new_envelope(b"hi", type="note", source="/s", datacontenttype="text/plain")
    assert (raw.type, raw.data, raw.dataversion, raw.datacontenttype) == (
        "note",
        b"hi",
        1,
        "text/plain",
    )
    other = new_envelope({"a": 1}, type="dict.event", source="/s", registry=registry)
    assert other.data == b'{"a":1}'
    with pytest.raises(ValueError, match="needs type="):
        new_envelope(b"hi", source="/s")
    with pytest.raises(ValueError, match="dict is not a registered event type"):
        new_envelope({"a": 1}, source="/s", registry=registry)


def test_argument_checks(registry: EventRegistry) -> None:
    with pytest.raises(ValueError, match="disagrees with Pinged's registered type 'pinged'"):
        new_envelope(Pinged(1), type="other", source="/s", registry=registry)
    assert new_envelope(Pinged(1), type="pinged", source="/s", registry=registry).type == "pinged"
    with pytest.raises(ValueError, match="source"):
        new_envelope(Pinged(1), source="", registry=registry)
    with pytest.raises(ValueError, match="reserved"):
        new_envelope(Pinged(1), source="/s", extensions={"type": "x"}, registry=registry)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("tenant", None),
        ("x1", None),
        ("Tenant", "lower-case"),
        ("my-ext", "lower-case"),
        ("", "lower-case"),
        ("datacontenttype", "reserved"),
        ("dataversion", "reserved"),
        ("data", "reserved"),
    ],
)
def test_extension_names(name: str, problem: str | None) -> None:
    reason = check_extension_name(name)
    if problem is None:
        assert reason is None
    else:
        assert reason is not None and problem in reason


def test_envelopes_are_immutable() -> None:
    envelope = Envelope(id="1", source="/s", type="t")
    with pytest.raises(AttributeError):
        envelope.id = "2"  # type: ignore[misc]
    assert Envelope(id="1", source="/s", type="t").extensions is not envelope.extensions
