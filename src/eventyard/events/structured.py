"""Structured content mode: the whole event as one JSON document (CloudEvents JSON format).

The record: value = the document, header ``content-type: application/cloudevents+json``,
key = ``partitionkey`` (which is in the document too, so the document stands alone). Every
attribute is a top-level member; ``dataversion`` is a JSON number; extensions are strings.

``data`` (CloudEvents JSON format, section 3.1):

- written inline as the ``data`` member, verbatim, when ``datacontenttype`` is JSON
  (absent, ``application/json``, ``text/json`` or any ``+json`` type) and the bytes are one
  valid UTF-8 JSON value without surrounding whitespace;
- otherwise as ``data_base64``, so any bytes round-trip exactly (binary payloads, text, and
  bytes that claim JSON but are not);
- absent for ``b""``.

Reading is lenient where the formats' writers differ: ``data`` may be a JSON string for a
non-JSON content type (its text is the data); attributes may be ``null`` (absent);
extension values may be JSON booleans and integers (read as CloudEvents' canonical strings);
``dataversion`` may be a numeric string; a document without ``datacontenttype`` takes the
record's ``content-type`` header when that is not the format's own (the ``cloudevents``
SDK's 1.x Kafka writer moves it there). Anything else malformed raises
:class:`~eventyard.errors.EventDecodeError` naming the member.

Speed: one ``msgspec.json.Decoder`` for a strict document struct (known members only,
``data`` as ``msgspec.Raw``, every constraint declared) decodes a valid event in one call;
any failure, including an unknown extension member, falls back to a member-by-member path
that finds the extensions or the precise reason.
"""

from __future__ import annotations

import binascii
import functools
import re
from typing import Annotated, Any, Literal

import msgspec

from eventyard.errors import EventDecodeError
from eventyard.events.envelope import (
    MAX_DATAVERSION,
    SPECVERSION,
    Envelope,
    Header,
    check_envelope,
    check_extension_name,
    parse_dataversion,
    specversion_problem,
)

__all__ = [
    "STRUCTURED_CONTENT_TYPE",
    "decode_structured",
    "encode_structured",
    "is_json_content_type",
]

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
"""The ``content-type`` header of a structured-mode record."""

_HEADERS: tuple[Header, ...] = (("content-type", STRUCTURED_CONTENT_TYPE.encode()),)
_JSON_TYPE = re.compile(r"(?:application|text)/(?:[a-z0-9.\-]+\+)?json", re.IGNORECASE)
_WHITESPACE = b" \t\r\n"
_NO_DATA = msgspec.Raw()
_NO_EXTENSIONS: dict[str, str] = {}
"""Shared by every fast-path envelope: :class:`Envelope` says ``extensions`` is read-only."""

_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
_Version = Annotated[int, msgspec.Meta(ge=1, le=MAX_DATAVERSION)]


class _Document(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A valid document with no unknown members: the fast path's target."""

    specversion: Literal["1.0"]
    id: _NonEmpty
    source: _NonEmpty
    type: _NonEmpty
    time: str | None = None
    subject: str | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    partitionkey: str | None = None
    correlationid: str | None = None
    causationid: str | None = None
    traceparent: str | None = None
    dataversion: _Version = 1
    data: msgspec.Raw = _NO_DATA
    data_base64: str | None = None


class _Output(msgspec.Struct, omit_defaults=True, kw_only=True, gc=False):
    """What eventyard writes, members in this order; ``None`` members are left out."""

    specversion: str
    id: str
    source: str
    type: str
    time: str | None = None
    subject: str | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    partitionkey: str | None = None
    correlationid: str | None = None
    causationid: str | None = None
    traceparent: str | None = None
    dataversion: int
    data: msgspec.Raw = _NO_DATA
    data_base64: str | None = None


_decode_document = msgspec.json.Decoder(_Document).decode
_decode_members = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_decode_any = msgspec.json.Decoder().decode
_decode_text = msgspec.json.Decoder(str).decode
_check_json = msgspec.json.Decoder(msgspec.Raw).decode
_encode = msgspec.json.Encoder().encode

_STRING_ATTRIBUTES = frozenset(
    {
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "subject",
        "datacontenttype",
        "dataschema",
        "partitionkey",
        "correlationid",
        "causationid",
        "traceparent",
    }
)


@functools.lru_cache(maxsize=64)
def _is_json_media(content_type: str) -> bool:
    return _JSON_TYPE.fullmatch(content_type.partition(";")[0].strip()) is not None


def is_json_content_type(content_type: str | None) -> bool:
    """Whether ``datacontenttype`` says JSON (``None`` does: the JSON format's default)."""
    return (
        content_type is None or content_type == "application/json" or _is_json_media(content_type)
    )


def _inline(data: bytes, content_type: str | None) -> bool:
    """Whether ``data`` can be the ``data`` member verbatim and read back byte for byte."""
    if not is_json_content_type(content_type):
        return False
    if data[0] in _WHITESPACE or data[-1] in _WHITESPACE:
        return False
    try:
        _check_json(data)
        if not data.isascii():
            data.decode()
    except (msgspec.DecodeError, UnicodeDecodeError):
        return False
    return True


def encode_structured(envelope: Envelope) -> tuple[bytes | None, bytes, tuple[Header, ...]]:
    """``(key, value, headers)`` of the structured-mode record for ``envelope``.

    Raises :class:`ValueError` for an envelope that could not be read back
    (:func:`~eventyard.events.envelope.check_envelope`).
    """
    check_envelope(envelope)
    data = envelope.data
    inline = bool(data) and _inline(data, envelope.datacontenttype)
    encoded = None if inline or not data else binascii.b2a_base64(data, newline=False).decode()
    document = _Output(
        specversion=envelope.specversion,
        id=envelope.id,
        source=envelope.source,
        type=envelope.type,
        time=envelope.time,
        subject=envelope.subject,
        datacontenttype=envelope.datacontenttype,
        dataschema=envelope.dataschema,
        partitionkey=envelope.partitionkey,
        correlationid=envelope.correlationid,
        causationid=envelope.causationid,
        traceparent=envelope.traceparent,
        dataversion=envelope.dataversion,
        data=msgspec.Raw(data) if inline else _NO_DATA,
        data_base64=encoded,
    )
    if envelope.extensions:
        members = msgspec.structs.asdict(document)
        members.update(envelope.extensions)
        value = _encode({n: v for n, v in members.items() if v is not None and v is not _NO_DATA})
    else:
        value = _encode(document)
    key = None if envelope.partitionkey is None else envelope.partitionkey.encode()
    return key, value, _HEADERS


def decode_structured(
    value: bytes | None,
    *,
    key: bytes | None = None,
    content_type: str | None = None,
    claimed: bool = True,
) -> Envelope | None:
    """The envelope of a structured-mode record.

    ``claimed``: the record's ``content-type`` header said ``application/cloudevents+json``.
    When it did not (the value was merely sniffed as a JSON object), a value that is not a
    JSON object with a ``specversion`` member is a plain record and gives ``None``; once the
    document has a ``specversion``, it is a CloudEvent and every problem raises
    :class:`~eventyard.errors.EventDecodeError`. ``content_type`` is that header's value, used
    only when the document has no ``datacontenttype``; ``key`` is the record key, used only
    when the document has no ``partitionkey``.
    """
    if value is None:
        if claimed:
            raise EventDecodeError("structured CloudEvent record has no value")
        return None
    try:
        document = _decode_document(value)
    except msgspec.DecodeError:
        return _decode_slowly(value, key, content_type, claimed)
    content = document.datacontenttype
    if content is None and content_type is not None:
        content = _fallback_content_type(content_type)
    partitionkey = document.partitionkey
    if partitionkey is None and key is not None:
        partitionkey = _text_key(key)
    # Positional: this runs once per consumed record, and msgspec parses keywords at about
    # four times the cost of positions (0.24 µs against 0.06 µs for these fifteen fields).
    return Envelope(
        document.id,
        document.source,
        document.type,
        SPECVERSION,
        document.time,
        document.subject,
        content,
        document.dataschema,
        partitionkey,
        document.correlationid,
        document.causationid,
        document.traceparent,
        document.dataversion,
        _NO_EXTENSIONS,
        _data(document.data, document.data_base64, content),
    )


def _decode_slowly(
    value: bytes, key: bytes | None, content_type: str | None, claimed: bool
) -> Envelope | None:
    """Member by member: extensions, lenient forms, and the precise reason for a refusal."""
    try:
        members = _decode_members(value)
    except msgspec.DecodeError as exc:
        if not claimed:
            return None
        raise EventDecodeError(f"structured CloudEvent is not a JSON object: {exc}") from None
    if "specversion" not in members and not claimed:
        return None
    fields: dict[str, Any] = {}
    extensions: dict[str, str] = {}
    data = _NO_DATA
    data_base64: str | None = None
    for name, raw in members.items():
        if name == "data":
            data = raw
            continue
        try:
            member = _decode_any(raw)
        except msgspec.DecodeError as exc:
            raise EventDecodeError(f"structured CloudEvent member {name!r}: {exc}") from None
        if member is None:
            continue
        if name in _STRING_ATTRIBUTES:
            if not isinstance(member, str):
                raise EventDecodeError(f"attribute {name!r} must be a string, not {member!r}")
            fields[name] = member
        elif name == "dataversion":
            fields[name] = _dataversion(member)
        elif name == "data_base64":
            if not isinstance(member, str):
                raise EventDecodeError(f"data_base64 must be a string, not {member!r}")
            data_base64 = member
        else:
            extensions[name] = _extension(name, member)
    if fields.get("specversion") != SPECVERSION:
        raise EventDecodeError(specversion_problem(fields.get("specversion")))
    for required in ("id", "source", "type"):
        if not fields.get(required):
            raise EventDecodeError(f"structured CloudEvent has no {required!r} attribute")
    if "datacontenttype" not in fields:
        fields["datacontenttype"] = (
            None if content_type is None else _fallback_content_type(content_type)
        )
    if "partitionkey" not in fields and key is not None:
        fields["partitionkey"] = _text_key(key)
    fields["data"] = _data(data, data_base64, fields["datacontenttype"])
    return Envelope(**fields, extensions=extensions)


def _data(data: msgspec.Raw, data_base64: str | None, content_type: str | None) -> bytes:
    if data_base64 is not None:
        if data and bytes(data) != b"null":
            raise EventDecodeError("structured CloudEvent has both data and data_base64")
        try:
            return binascii.a2b_base64(data_base64, strict_mode=True)
        except (binascii.Error, ValueError) as exc:
            raise EventDecodeError(f"data_base64 is not base64: {exc}") from None
    if not data:
        return b""
    raw = bytes(data)
    if raw[:1] == b'"' and not is_json_content_type(content_type):
        try:
            return _decode_text(raw).encode()
        except (msgspec.DecodeError, UnicodeEncodeError) as exc:
            raise EventDecodeError(f"data is not a valid JSON string: {exc}") from None
    return raw


def _dataversion(member: object) -> int:
    if isinstance(member, int) and not isinstance(member, bool):
        if 1 <= member <= MAX_DATAVERSION:
            return member
        raise EventDecodeError(f"dataversion must be 1 to {MAX_DATAVERSION}, not {member}")
    if isinstance(member, str):
        return parse_dataversion(member, "member dataversion")
    raise EventDecodeError(f"dataversion must be an integer, not {member!r}")


def _extension(name: str, member: object) -> str:
    reason = check_extension_name(name)
    if reason is not None:
        raise EventDecodeError(f"structured CloudEvent member {name!r}: {reason}")
    if isinstance(member, str):
        return member
    if isinstance(member, bool):
        return "true" if member else "false"
    if isinstance(member, int):
        return str(member)
    raise EventDecodeError(
        f"extension attribute {name!r} must be a string, boolean or integer, not {member!r}"
    )


def _fallback_content_type(content_type: str) -> str | None:
    media = content_type.partition(";")[0].strip().lower()
    return None if media.startswith("application/cloudevents") else content_type


def _text_key(key: bytes) -> str | None:
    try:
        return key.decode()
    except UnicodeDecodeError:
        return None
