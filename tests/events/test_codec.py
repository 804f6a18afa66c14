"""encode/decode: round trips in both modes, mode detection, plain records, and fuzzing that
proves a decode only ever returns an envelope or None, or raises EventDecodeError."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventyard.errors import EventDecodeError
from eventyard.events import Envelope, decode, encode
from eventyard.events.envelope import Header

from .strategies import envelopes

MODES = ["structured", "binary"]


def sample(**changes: object) -> Envelope:
    base = Envelope(
        id="e-1",
        source="/sourcing",
        type="listing.created",
        time="2024-05-01T12:00:00.000001Z",
        partitionkey="L-1",
        data=b'{"listing_id":"L-1"}',
    )
    return msgspec.structs.replace(base, **changes)


@pytest.mark.parametrize("mode", MODES)
def test_round_trip(mode: str) -> None:
    envelope = sample(correlationid="c", causationid="p", traceparent="00-ab-cd-01")
    key, value, headers = encode(envelope, mode)  # type: ignore[arg-type]
    assert key == b"L-1"
    assert decode(value, headers, key) == envelope


@given(envelope=envelopes(), mode=st.sampled_from(MODES))
def test_any_envelope_round_trips(envelope: Envelope, mode: str) -> None:
    key, value, headers = encode(envelope, mode)  # type: ignore[arg-type]
    assert decode(value, headers, key) == envelope


@given(envelope=envelopes())
def test_structured_mode_round_trips_without_the_key(envelope: Envelope) -> None:
    _, value, headers = encode(envelope)
    assert decode(value, headers) == envelope


def test_binary_mode_takes_the_partition_key_from_the_record_key() -> None:
    key, value, headers = encode(sample(), "binary")
    assert all(name != "ce_partitionkey" for name, _ in headers)
    decoded = decode(value, headers)
    assert decoded is not None
    assert decoded.partitionkey is None
    assert decode(value, headers, key) == sample()


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="content mode"):
        encode(sample(), "avro")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "headers"),
    [
        (b"hello from kcat", ()),
        (None, ()),
        (b"", ()),
        (b'{"listing_id": "L-1"}', (("content-type", b"application/json"),)),
        (b'{"nested": {"specversion": "1.0"}}', ()),
        (b'{"specversion" oops', ()),
        (b'["specversion"]', ()),
        (b"\xff\xfe", (("content-type", b"\xff"), ("trace", None))),
        (b'{"a":1}', (("x-app", b"1"),)),
    ],
)
def test_plain_records_are_not_cloudevents(
    value: bytes | None, headers: tuple[Header, ...]
) -> None:
    assert decode(value, headers) is None


def test_a_sniffed_json_object_with_specversion_is_structured() -> None:
    value = b' {"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":1}}'
    assert decode(value) == Envelope(
        id="1", source="/s", type="t", datacontenttype=None, data=b'{"a":1}'
    )


def test_a_binary_header_wins_over_a_structured_content_type() -> None:
    headers = (
        ("content-type", b"application/cloudevents+json"),
        ("ce_id", b"1"),
        ("ce_source", b"/s"),
        ("ce_type", b"t"),
        ("ce_specversion", b"1.0"),
    )
    decoded = decode(b"raw", headers)
    assert decoded is not None
    assert decoded.data == b"raw"
    assert decoded.datacontenttype == "application/cloudevents+json"


def test_header_names_are_case_insensitive() -> None:
    headers = (
        ("CE_SpecVersion", b"1.0"),
        ("Ce_Id", b"1"),
        ("ce_source", b"/s"),
        ("CE_TYPE", b"t"),
        ("Content-Type", b"text/plain"),
        ("CE_MyExt", b"v"),
    )
    assert decode(b"hi", headers) == Envelope(
        id="1",
        source="/s",
        type="t",
        datacontenttype="text/plain",
        extensions={"myext": "v"},
        data=b"hi",
    )


def test_structured_content_type_with_parameters_is_recognised() -> None:
    _, value, _ = encode(sample())
    headers = (("Content-Type", b"application/CloudEvents+JSON; charset=utf-8"),)
    assert decode(value, headers, b"L-1") == sample()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", "not a JSON object"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"id": "1"}', "no specversion"),
        (None, "no value"),
    ],
)
def test_a_claimed_structured_record_that_is_malformed_raises(
    value: bytes | None, reason: str
) -> None:
    with pytest.raises(EventDecodeError, match=reason):
        decode(value, (("content-type", b"application/cloudevents+json"),))


@pytest.mark.parametrize(
    "media", ["application/cloudevents-batch+json", "application/cloudevents+avro"]
)
def test_other_cloudevents_formats_raise(media: str) -> None:
    with pytest.raises(EventDecodeError, match="unsupported CloudEvents format"):
        decode(b"{}", (("content-type", media.encode()),))


def mutate(data: bytes, position: int, byte: int) -> bytes:
    if not data:
        return bytes([byte])
    position %= len(data)
    return data[:position] + bytes([byte]) + data[position + 1 :]


def decodes_or_raises_only_event_decode_error(
    value: bytes | None, headers: tuple[Header, ...], key: bytes | None
) -> None:
    try:
        result = decode(value, headers, key)
    except EventDecodeError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert result is None or isinstance(result, Envelope)


@given(
    envelope=envelopes(),
    mode=st.sampled_from(MODES),
    positions=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=4),
    cut=st.none() | st.integers(0, 1 << 16),
)
def test_mutated_values_raise_only_event_decode_error(
    envelope: Envelope,
    mode: str,
    positions: list[tuple[int, int]],
    cut: int | None,
) -> None:
    key, value, headers = encode(envelope, mode)  # type: ignore[arg-type]
    for position, byte in positions:
        value = mutate(value, position, byte)
    if cut is not None:
        value = value[: cut % (len(value) + 1)]
    decodes_or_raises_only_event_decode_error(value, headers, key)


@given(
    envelope=envelopes(),
    index=st.integers(0, 40),
    name=st.none() | st.text(max_size=20),
    raw=st.none() | st.binary(max_size=20),
    key=st.none() | st.binary(max_size=10),
)
def test_mutated_headers_raise_only_event_decode_error(
    envelope: Envelope, index: int, name: str | None, raw: bytes | None, key: bytes | None
) -> None:
    _, value, headers = encode(envelope, "binary")
    changed = list(headers)
    position = index % len(changed)
    if name is None:
        del changed[position]
    else:
        changed[position] = (name, raw)
    decodes_or_raises_only_event_decode_error(value, tuple(changed), key)


@given(
    value=st.none() | st.binary(max_size=300),
    headers=st.lists(
        st.tuples(
            st.sampled_from(["ce_specversion", "content-type", "ce_id", "ce_x", "x"])
            | st.text(max_size=8),
            st.none()
            | st.sampled_from([b"1.0", b"application/cloudevents+json", b"1"])
            | st.binary(max_size=10),
        ),
        max_size=6,
    ).map(tuple),
    key=st.none() | st.binary(max_size=10),
)
def test_garbage_records_raise_only_event_decode_error(
    value: bytes | None, headers: tuple[Header, ...], key: bytes | None
) -> None:
    decodes_or_raises_only_event_decode_error(value, headers, key)


@given(
    document=st.dictionaries(
        st.sampled_from(
            [
                "specversion",
                "id",
                "source",
                "type",
                "data",
                "data_base64",
                "dataversion",
                "time",
                "datacontenttype",
                "partitionkey",
                "ext",
                "Bad-Name",
            ]
        ),
        st.none()
        | st.booleans()
        | st.integers()
        | st.text(max_size=8)
        | st.lists(st.integers(), max_size=2),
        max_size=10,
    ),
    claimed=st.booleans(),
)
def test_arbitrary_json_documents_raise_only_event_decode_error(
    document: dict[str, object], claimed: bool
) -> None:
    headers: tuple[Header, ...] = (
        (("content-type", b"application/cloudevents+json"),) if claimed else ()
    )
    decodes_or_raises_only_event_decode_error(msgspec.json.encode(document), headers, None)
