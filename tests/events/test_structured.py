"""Structured content mode: the JSON document, data inline or as data_base64, the lenient
forms other writers produce, and the errors that name the member."""

from __future__ import annotations

import base64

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventyard.errors import EventDecodeError
from eventyard.events import Envelope
from eventyard.events.structured import (
    decode_structured,
    encode_structured,
    is_json_content_type,
)

from .strategies import JSON_DATA

REQUIRED = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}


def document(**members: object) -> bytes:
    return msgspec.json.encode({**REQUIRED, **members})


def written(envelope: Envelope) -> dict[str, object]:
    _, value, headers = encode_structured(envelope)
    assert headers == (("content-type", b"application/cloudevents+json"),)
    members = msgspec.json.decode(value)
    assert isinstance(members, dict)
    return members


def test_the_document() -> None:
    envelope = Envelope(
        id="1",
        source="/s",
        type="t",
        time="2024-05-01T12:00:00Z",
        partitionkey="k",
        dataversion=2,
        extensions={"tenant": "acme"},
        data=b'{"a": [1, 2.5]}',
    )
    key, value, _ = encode_structured(envelope)
    assert key == b"k"
    assert msgspec.json.decode(value) == {
        "specversion": "1.0",
        "id": "1",
        "source": "/s",
        "type": "t",
        "time": "2024-05-01T12:00:00Z",
        "datacontenttype": "application/json",
        "partitionkey": "k",
        "dataversion": 2,
        "data": {"a": [1, 2.5]},
        "tenant": "acme",
    }
    assert b'"data":{"a": [1, 2.5]}' in value
    assert decode_structured(value) == envelope


@given(JSON_DATA)
def test_json_data_is_inline_and_byte_exact(data: object) -> None:
    raw = msgspec.json.encode(data)
    envelope = Envelope(id="1", source="/s", type="t", data=raw)
    members = written(envelope)
    assert members["data"] == data
    assert "data_base64" not in members
    assert decode_structured(encode_structured(envelope)[1]) == envelope


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("application/octet-stream", b"\x00\x01\xff"),
        ("text/plain", b"hello"),
        ("application/json", b"not json"),
        ("application/json", b' {"a": 1}'),
        ("application/json", b'"\xff"'),
        (None, b"{"),
    ],
)
def test_other_data_is_base64(content_type: str | None, data: bytes) -> None:
    envelope = Envelope(id="1", source="/s", type="t", datacontenttype=content_type, data=data)
    members = written(envelope)
    assert "data" not in members
    assert members["data_base64"] == base64.b64encode(data).decode()
    assert decode_structured(encode_structured(envelope)[1]) == envelope


def test_no_data_is_no_member() -> None:
    members = written(Envelope(id="1", source="/s", type="t"))
    assert "data" not in members
    assert "data_base64" not in members
    assert members["dataversion"] == 1


def test_a_json_string_is_the_text_of_non_json_data() -> None:
    decoded = decode_structured(document(datacontenttype="text/plain", data="héllo"))
    assert decoded is not None
    assert decoded.data == "héllo".encode()


def test_lenient_forms() -> None:
    decoded = decode_structured(
        document(subject=None, dataversion="3", flag=True, count=7, off=False)
    )
    assert decoded == Envelope(
        id="1",
        source="/s",
        type="t",
        datacontenttype=None,
        dataversion=3,
        extensions={"flag": "true", "count": "7", "off": "false"},
    )


def test_the_key_and_content_type_header_fill_absent_members() -> None:
    decoded = decode_structured(document(), key=b"k", content_type="application/json")
    assert decoded is not None
    assert (decoded.partitionkey, decoded.datacontenttype) == ("k", "application/json")
    own = decode_structured(document(), content_type="application/cloudevents+json")
    assert own is not None
    assert own.datacontenttype is None
    inside = decode_structured(document(partitionkey="doc"), key=b"k")
    assert inside is not None
    assert inside.partitionkey == "doc"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (document(specversion="0.3"), "unsupported CloudEvents specversion '0.3'"),
        (document(specversion=1), "attribute 'specversion' must be a string"),
        (msgspec.json.encode({"specversion": "1.0", "source": "/s", "type": "t"}), "'id'"),
        (document(source=""), "no 'source' attribute"),
        (document(type=["t"]), "attribute 'type' must be a string"),
        (document(dataversion=0), "dataversion must be 1"),
        (document(dataversion=True), "dataversion must be an integer"),
        (document(dataversion="v2"), "dataversion.*'v2'"),
        (document(data={"a": 1}, data_base64="AA=="), "both data and data_base64"),
        (document(data_base64="not base64!"), "data_base64 is not base64"),
        (document(data_base64=5), "data_base64 must be a string"),
        (document(ext={"a": 1}), "extension attribute 'ext' must be"),
        (document(**{"Bad-Name": "x"}), "'Bad-Name'.*lower-case"),
        (b'{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":"\xff"}', "subject"),
    ],
)
def test_malformed_documents_raise_naming_the_member(value: bytes, reason: str) -> None:
    with pytest.raises(EventDecodeError, match=reason):
        decode_structured(value)
    with pytest.raises(EventDecodeError, match=reason):
        decode_structured(value, claimed=False)


def test_an_unclaimed_value_without_specversion_is_not_an_event() -> None:
    assert decode_structured(b'{"id": "1"}', claimed=False) is None
    assert decode_structured(b"[]", claimed=False) is None
    assert decode_structured(None, claimed=False) is None


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (None, True),
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("text/json", True),
        ("application/vnd.eventyard.listing+json", True),
        ("application/jsonx", False),
        ("text/plain", False),
        ("application/octet-stream", False),
        ("", False),
    ],
)
def test_is_json_content_type(content_type: str | None, expected: bool) -> None:
    assert is_json_content_type(content_type) is expected


@given(st.dictionaries(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), st.text(max_size=5)))
def test_unknown_members_become_extensions_or_attributes(members: dict[str, str]) -> None:
    decoded = decode_structured(msgspec.json.encode({**members, **REQUIRED}))
    assert decoded is not None
