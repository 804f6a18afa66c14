"""Envelopes to records and back, in either CloudEvents content mode, detecting it on read.

:func:`encode` writes an :class:`~eventyard.events.envelope.Envelope` as a record's
``(key, value, headers)``: structured mode (``structured.py``) by default, since the value
then stands alone (a ``kcat`` reader or a log dump sees the whole event), or binary mode
(``binary.py``), the CloudEvents Kafka binding's headers form, whose value is the bare data.

:func:`decode` reads any record, from eventyard or any other producer, and decides (in this
order, as the Kafka binding and the ``cloudevents`` SDK do):

1. a ``ce_specversion`` header (any case): binary mode;
2. a ``content-type`` header ``application/cloudevents+json`` (parameters allowed):
   structured mode, and the record claims to be a CloudEvent, so a value that is not a valid
   one raises; another ``application/cloudevents...`` format (batch, Avro, Protobuf) raises
   too, as eventyard reads only single JSON events;
3. a value that is a JSON object with a top-level ``specversion`` member: structured mode
   (the ``cloudevents`` SDK's 1.x Kafka writer sends no format header). The sniff is a
   leading ``{`` and a byte search for ``"specversion"``; a value without both is not parsed;
4. anything else is a plain record (a ``kcat`` line, another application's message):
   ``None``, never an error, so the caller can route it as it likes.

Every problem raises :class:`~eventyard.errors.EventDecodeError` with a one-line reason; no
other exception escapes for any input bytes (a hypothesis test mutates records to prove it).

Speed: records eventyard wrote are recognised from their first header (binary mode puts
``ce_specversion`` first; structured mode has the format header alone), without a scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from eventyard.errors import EventDecodeError
from eventyard.events.binary import decode_binary, encode_binary
from eventyard.events.envelope import Envelope, Header
from eventyard.events.structured import (
    STRUCTURED_CONTENT_TYPE,
    decode_structured,
    encode_structured,
)

__all__ = ["EncodedRecord", "Mode", "decode", "encode"]

Mode = Literal["structured", "binary"]
"""A CloudEvents content mode."""

EncodedRecord = tuple[bytes | None, bytes, tuple[Header, ...]]
"""``(key, value, headers)``: the key is the partition key as UTF-8, or ``None``."""

_STRUCTURED = STRUCTURED_CONTENT_TYPE.encode()


def encode(envelope: Envelope, mode: Mode = "structured") -> EncodedRecord:
    """The record for ``envelope`` in ``mode``.

    Raises :class:`ValueError` for an unknown mode or an envelope that could not be read
    back (:func:`~eventyard.events.envelope.check_envelope`).
    """
    if mode == "structured":
        return encode_structured(envelope)
    if mode == "binary":
        return encode_binary(envelope)
    raise ValueError(f"unknown CloudEvents content mode {mode!r} (structured or binary)")


def decode(
    value: bytes | None, headers: Sequence[Header] = (), key: bytes | None = None
) -> Envelope | None:
    """The envelope a record carries, or ``None`` for a record that carries no CloudEvent.

    ``key`` is the record key: binary mode's ``partitionkey`` (and structured mode's when
    the document has none). See the module docstring for the detection rules; raises
    :class:`~eventyard.errors.EventDecodeError` for a record that claims to be a CloudEvent
    and is malformed.
    """
    content_type: bytes | None = None
    if headers:
        name, raw = headers[0]
        if name == "ce_specversion":
            return decode_binary(value, headers, key)
        if len(headers) == 1 and name == "content-type" and raw == _STRUCTURED:
            return decode_structured(value, key=key, content_type=STRUCTURED_CONTENT_TYPE)
        for name, raw in headers:
            lowered = name.lower()
            if lowered == "ce_specversion":
                return decode_binary(value, headers, key)
            if lowered == "content-type":
                content_type = raw
    text = None
    if content_type is not None:
        try:
            text = content_type.decode()
        except UnicodeDecodeError:
            text = None
        if text is not None:
            media = text.partition(";")[0].strip().lower()
            if media == STRUCTURED_CONTENT_TYPE:
                return decode_structured(value, key=key, content_type=text)
            if media.startswith("application/cloudevents"):
                raise EventDecodeError(
                    f"unsupported CloudEvents format {media!r} (eventyard reads "
                    f"{STRUCTURED_CONTENT_TYPE} and binary mode)"
                )
    if value and (value[:1] == b"{" or value.lstrip()[:1] == b"{") and b'"specversion"' in value:
        return decode_structured(value, key=key, content_type=text, claimed=False)
    return None
