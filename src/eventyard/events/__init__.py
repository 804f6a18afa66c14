"""eventyard.events: the event envelope, its record codecs, typed events and upcasting.

Sans-io and free of asyncio: it imports msgspec and the standard library only (pydantic
models are recognised, not imported), so every layer above, and users' own tools, can use it.

- :class:`Envelope` is a CloudEvents 1.0 event plus eventyard's extension attributes
  (``partitionkey``, ``correlationid``, ``causationid``, ``traceparent``, ``dataversion``),
  with ``data`` still encoded; :func:`new_envelope` builds one for a typed event;
- :func:`encode` / :func:`decode` map it onto a Kafka-style record in CloudEvents' structured
  (JSON) or binary (``ce_*`` headers) content mode, detecting the mode on read and returning
  ``None`` for a record that carries no CloudEvent;
- :class:`EventRegistry` (and :func:`event` / :func:`upcaster` on :data:`default_registry`)
  name typed event classes (msgspec Structs, dataclasses, pydantic models) with a type and
  a version, and build the decoders that validate ``data`` and upcast old versions.

A record that claims to be a CloudEvent and is malformed raises
:class:`~eventyard.errors.EventDecodeError`; data that does not fit its class raises
:class:`~eventyard.errors.EventValidationError` naming the field.
"""

from eventyard.events.codec import EncodedRecord, Mode, decode, encode
from eventyard.events.envelope import (
    SPECVERSION,
    Envelope,
    new_envelope,
    new_event_id,
    rfc3339_now,
)
from eventyard.events.registry import EventRegistry, default_registry, event, upcaster
from eventyard.events.structured import STRUCTURED_CONTENT_TYPE, is_json_content_type
from eventyard.events.upcasting import Upcaster

__all__ = [
    "SPECVERSION",
    "STRUCTURED_CONTENT_TYPE",
    "EncodedRecord",
    "Envelope",
    "EventRegistry",
    "Mode",
    "Upcaster",
    "decode",
    "default_registry",
    "encode",
    "event",
    "is_json_content_type",
    "new_envelope",
    "new_event_id",
    "rfc3339_now",
    "upcaster",
]
