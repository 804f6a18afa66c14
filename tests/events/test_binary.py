"""Binary content mode: the ce_* header mapping and the errors that name the header."""

from __future__ import annotations

import pytest

from eventyard.errors import EventDecodeError
from eventyard.events import Envelope
from eventyard.events.binary import decode_binary, encode_binary
from eventyard.events.envelope import Header

REQUIRED: tuple[Header, ...] = (
    ("ce_specversion", b"1.0"),
    ("ce_id", b"1"),
    ("ce_source", b"/s"),
    ("ce_type", b"t"),
)


def test_the_header_mapping() -> None:
    envelope = Envelope(
        id="1",
        source="/s",
        type="t",
        time="2024-05-01T12:00:00Z",
        subject="L-1",
        datacontenttype="application/json",
        dataschema="https://example.com/s.json",
        partitionkey="k",
        correlationid="c",
        causationid="p",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        dataversion=3,
        extensions={"tenant": "acme"},
        data=b'{"a":1}',
    )
    key, value, headers = encode_binary(envelope)
    assert key == b"k"
    assert value == b'{"a":1}'
    assert headers == (
        *REQUIRED,
        ("ce_time", b"2024-05-01T12:00:00Z"),
        ("ce_subject", b"L-1"),
        ("ce_dataschema", b"https://example.com/s.json"),
        ("ce_correlationid", b"c"),
        ("ce_causationid", b"p"),
        ("ce_traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ("content-type", b"application/json"),
        ("ce_dataversion", b"3"),
        ("ce_tenant", b"acme"),
    )
    assert decode_binary(value, headers, key) == envelope


def test_minimal_headers_give_defaults() -> None:
    assert decode_binary(None, REQUIRED) == Envelope(
        id="1", source="/s", type="t", datacontenttype=None, dataversion=1, data=b""
    )


def test_no_data_is_an_empty_value_never_a_tombstone() -> None:
    _, value, _ = encode_binary(Envelope(id="1", source="/s", type="t"))
    assert value == b""


def test_null_header_values_are_absent_and_other_headers_ignored() -> None:
    headers = (*REQUIRED, ("ce_subject", None), ("x-retry", b"2"), ("ce_other", None))
    decoded = decode_binary(b"", headers)
    assert decoded.subject is None
    assert decoded.extensions == {}


def test_a_later_duplicate_wins() -> None:
    decoded = decode_binary(b"", (*REQUIRED, ("ce_subject", b"a"), ("ce_subject", b"b")))
    assert decoded.subject == "b"


def test_key_wins_over_a_partitionkey_header_unless_it_is_not_utf8() -> None:
    headers = (*REQUIRED, ("ce_partitionkey", b"from-header"))
    assert decode_binary(b"", headers, b"from-key").partitionkey == "from-key"
    assert decode_binary(b"", headers, b"\xff").partitionkey == "from-header"
    assert decode_binary(b"", REQUIRED, b"\xff").partitionkey is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (REQUIRED[1:], "no specversion"),
        ((("ce_specversion", b"0.3"), *REQUIRED[1:]), "unsupported CloudEvents specversion '0.3'"),
        ((REQUIRED[0], *REQUIRED[2:]), "no 'id' attribute"),
        ((*REQUIRED[:2], REQUIRED[3]), "no 'source' attribute"),
        ((*REQUIRED[:3], ("ce_type", b"")), "no 'type' attribute"),
        ((*REQUIRED, ("ce_subject", b"\xff")), "header 'ce_subject' is not UTF-8"),
        ((*REQUIRED, ("CE_Subject", b"\xff")), "header 'CE_Subject' is not UTF-8"),
        ((*REQUIRED, ("ce_ext", b"\xff")), "header 'ce_ext' is not UTF-8"),
        ((*REQUIRED, ("ce_dataversion", b"two")), "ce_dataversion.*'two'"),
        ((*REQUIRED, ("ce_dataversion", b"0")), "ce_dataversion.*'0'"),
        ((*REQUIRED, ("ce_dataversion", b" 1_0")), "ce_dataversion"),
        ((*REQUIRED, ("ce_my-ext", b"v")), "header 'ce_my-ext'.*lower-case"),
    ],
)
def test_malformed_headers_raise_naming_the_attribute(
    headers: tuple[Header, ...], reason: str
) -> None:
    with pytest.raises(EventDecodeError, match=reason):
        decode_binary(b"", headers)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"specversion": "0.3"}, "specversion"),
        ({"id": ""}, "'id'"),
        ({"source": ""}, "'source'"),
        ({"dataversion": 0}, "dataversion"),
        ({"extensions": {"Bad": "x"}}, "lower-case"),
        ({"extensions": {"subject": "x"}}, "reserved"),
        ({"extensions": {"data": "x"}}, "reserved"),
    ],
)
def test_envelopes_that_could_not_be_read_back_are_refused(
    changes: dict[str, object], reason: str
) -> None:
    fields: dict[str, object] = {"id": "1", "source": "/s", "type": "t", **changes}
    with pytest.raises(ValueError, match=reason):
        encode_binary(Envelope(**fields))  # type: ignore[arg-type]
