"""Binary content mode: the CloudEvents Kafka protocol binding's attributes-as-headers form.

The mapping (CloudEvents Kafka protocol binding 1.0, section 3.2)::

    attribute          record
    ---------          ------
    <name>             header ce_<name>, its value as UTF-8 (every attribute, extensions too)
    datacontenttype    header content-type (not ce_datacontenttype)
    partitionkey       the record key, as UTF-8 (no header, as the binding's default key mapper)
    dataversion        header ce_dataversion, the decimal digits
    data               the record value, as is (b"" for no data: never a null value, which
                       Kafka's compaction would read as a tombstone)

Writing puts ``ce_specversion`` first, which lets :func:`~eventyard.events.codec.decode`
recognise the mode from the first header. Reading takes header names case-insensitively
(exact lower-case names take the fast path), treats a null header value as an absent
attribute, lets a later duplicate header win, and takes ``partitionkey`` from the record key
when there is one and it is UTF-8 (else from a ``ce_partitionkey`` header, if any). Anything
that makes the record an invalid CloudEvent raises
:class:`~eventyard.errors.EventDecodeError` naming the header.

Speed: decoding is one pass over the headers with a dict lookup each and one ``Envelope``
construction; nothing is parsed but ``ce_dataversion``.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventyard.errors import EventDecodeError
from eventyard.events.envelope import (
    SPECVERSION,
    Envelope,
    Header,
    check_envelope,
    check_extension_name,
    parse_dataversion,
    specversion_problem,
)

__all__ = ["CE_PREFIX", "CONTENT_TYPE", "decode_binary", "encode_binary"]

CE_PREFIX = "ce_"
"""The prefix of every attribute header."""

CONTENT_TYPE = "content-type"
"""The header carrying ``datacontenttype`` (and, in structured mode, the format)."""

_SPECVERSION_HEADER = ("ce_specversion", SPECVERSION.encode())

_FIELD_OF: dict[str, str] = {
    f"{CE_PREFIX}{name}": name
    for name in (
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "subject",
        "dataschema",
        "partitionkey",
        "correlationid",
        "causationid",
        "traceparent",
        "dataversion",
    )
}
_FIELD_OF[CONTENT_TYPE] = "datacontenttype"
_FIELD_OF["ce_datacontenttype"] = "datacontenttype"

_SMALL_VERSIONS = {str(version): version for version in range(1, 100)}
"""``ce_dataversion`` values looked up rather than parsed."""

_OPTIONAL = (
    ("ce_time", "time"),
    ("ce_subject", "subject"),
    ("ce_dataschema", "dataschema"),
    ("ce_correlationid", "correlationid"),
    ("ce_causationid", "causationid"),
    ("ce_traceparent", "traceparent"),
)


def encode_binary(envelope: Envelope) -> tuple[bytes | None, bytes, tuple[Header, ...]]:
    """``(key, value, headers)`` of the binary-mode record for ``envelope``.

    Raises :class:`ValueError` for an envelope that could not be read back
    (:func:`~eventyard.events.envelope.check_envelope`) or a string that is not UTF-8-able.
    """
    check_envelope(envelope)
    headers: list[Header] = [
        _SPECVERSION_HEADER,
        ("ce_id", envelope.id.encode()),
        ("ce_source", envelope.source.encode()),
        ("ce_type", envelope.type.encode()),
    ]
    for header, field in _OPTIONAL:
        text = getattr(envelope, field)
        if text is not None:
            headers.append((header, text.encode()))
    if envelope.datacontenttype is not None:
        headers.append((CONTENT_TYPE, envelope.datacontenttype.encode()))
    headers.append(("ce_dataversion", str(envelope.dataversion).encode()))
    for name, text in envelope.extensions.items():
        headers.append((CE_PREFIX + name, text.encode()))
    key = None if envelope.partitionkey is None else envelope.partitionkey.encode()
    return key, envelope.data, tuple(headers)


def decode_binary(
    value: bytes | None, headers: Sequence[Header], key: bytes | None = None
) -> Envelope:
    """The envelope of a binary-mode record (the caller has seen its ``ce_specversion``).

    Raises :class:`~eventyard.errors.EventDecodeError` for a missing or empty required
    attribute, a specversion other than 1.0, a header value that is not UTF-8, a bad
    ``ce_dataversion`` or an extension name CloudEvents does not allow.

    The loop assumes exact names and values that are UTF-8 bytes; a null value or bad
    UTF-8 (``AttributeError``, ``UnicodeDecodeError``) sends every header through
    :func:`_others` instead, which treats each case on its own.
    """
    fields: dict[str, str] = {}
    others: list[Header] = []
    field_of = _FIELD_OF.get
    try:
        for name, raw in headers:
            field = field_of(name)
            if field is None:
                others.append((name, raw))
            else:
                fields[field] = raw.decode()  # type: ignore[union-attr]
    except (AttributeError, UnicodeDecodeError):
        fields.clear()
        others = list(headers)
    extensions = _others(others, fields) if others else {}
    get = fields.get
    if get("specversion") != SPECVERSION:
        raise EventDecodeError(specversion_problem(get("specversion")))
    id_, source, type_ = get("id"), get("source"), get("type")
    if not id_ or not source or not type_:
        missing = next(n for n in ("id", "source", "type") if not get(n))
        raise EventDecodeError(
            f"binary CloudEvent has no {missing!r} attribute (header ce_{missing} missing or empty)"
        )
    dataversion = get("dataversion")
    partitionkey = get("partitionkey")
    if key is not None:
        try:
            partitionkey = key.decode()
        except UnicodeDecodeError:
            partitionkey = get("partitionkey")
    return Envelope(
        id=id_,
        source=source,
        type=type_,
        time=get("time"),
        subject=get("subject"),
        datacontenttype=get("datacontenttype"),
        dataschema=get("dataschema"),
        partitionkey=partitionkey,
        correlationid=get("correlationid"),
        causationid=get("causationid"),
        traceparent=get("traceparent"),
        dataversion=1
        if dataversion is None
        else _SMALL_VERSIONS.get(dataversion)
        or parse_dataversion(dataversion, "header ce_dataversion"),
        extensions=extensions,
        data=value or b"",
    )


def _others(others: list[Header], fields: dict[str, str]) -> dict[str, str]:
    """Sort the headers the fast loop left: names in another case, extensions (returned),
    headers that are not the event's (ignored), null values (absent) and bad UTF-8 (raised).
    """
    extensions: dict[str, str] = {}
    for name, raw in others:
        if raw is None:
            continue
        lowered = name.lower()
        field = _FIELD_OF.get(lowered)
        if field is not None:
            fields[field] = _text(name, raw)
        elif lowered.startswith(CE_PREFIX):
            extension = lowered[len(CE_PREFIX) :]
            reason = check_extension_name(extension)
            if reason is not None:
                raise EventDecodeError(f"header {name!r}: {reason}")
            extensions[extension] = _text(name, raw)
    return extensions


def _text(name: str, raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise EventDecodeError(f"binary CloudEvent header {name!r} is not UTF-8") from None
