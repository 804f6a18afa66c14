"""The event envelope: CloudEvents 1.0 attributes plus eventyard's extensions, and its factory.

An :class:`Envelope` is what travels on a topic, whatever the content mode (``binary.py`` and
``structured.py`` say how it maps onto a record). Its attributes:

- CloudEvents 1.0 context attributes: ``id``, ``source``, ``type`` (required, non-empty),
  ``specversion`` (always ``"1.0"``), ``time`` (RFC 3339, passed through unchecked),
  ``subject``, ``datacontenttype`` (``None`` means JSON, as the CloudEvents JSON format says),
  ``dataschema``;
- eventyard's extension attributes: ``partitionkey`` (the record key, CloudEvents' Kafka
  binding's own extension), ``correlationid`` and ``causationid`` (the conversation an event
  belongs to and the event that caused it), ``traceparent`` (W3C trace context, CloudEvents'
  distributed-tracing extension) and ``dataversion`` (the schema version of ``data``, an
  integer from 1, read by the upcasters);
- ``extensions``: every other extension attribute, by name (lower-case ASCII letters and
  digits, as CloudEvents requires), as strings;
- ``data``: the encoded payload, JSON bytes for typed events, ``b""`` for none.

``data`` stays bytes on purpose: decoding an envelope never decodes its payload, so a consumer
that filters on attributes pays nothing for data it drops, and the typed decode happens once,
with the subscription's type (:meth:`EventRegistry.decoder
<eventyard.events.registry.EventRegistry.decoder>`).

:func:`new_envelope` fills the id (a UUIDv7, time-ordered so logs and indexes sort by
creation) and the time (now, UTC, microseconds, ``Z``) from one clock reading.
"""

from __future__ import annotations

import os
import random
import re
import time as _time
from collections.abc import Mapping

import msgspec

from eventyard.errors import EventDecodeError
from eventyard.events.registry import EventRegistry, default_registry

__all__ = [
    "CORE_ATTRIBUTES",
    "EXTENSION_ATTRIBUTES",
    "MAX_DATAVERSION",
    "SPECVERSION",
    "Envelope",
    "Header",
    "check_envelope",
    "check_extension_name",
    "new_envelope",
    "new_event_id",
    "parse_dataversion",
    "rfc3339_now",
    "specversion_problem",
]

SPECVERSION = "1.0"
"""The only CloudEvents version eventyard reads or writes."""

CORE_ATTRIBUTES = frozenset(
    {"id", "source", "type", "specversion", "time", "subject", "datacontenttype", "dataschema"}
)
"""CloudEvents 1.0's context attributes."""

EXTENSION_ATTRIBUTES = frozenset(
    {"partitionkey", "correlationid", "causationid", "traceparent", "dataversion"}
)
"""The extension attributes :class:`Envelope` has a field for."""

MAX_DATAVERSION = (1 << 31) - 1
"""The largest ``dataversion``: CloudEvents integers are signed 32-bit."""

Header = tuple[str, bytes | None]
"""One record header, as :mod:`eventyard.records` has it (this package may not import that
sibling layer): a UTF-8 name and a value that may be null."""

_RESERVED = CORE_ATTRIBUTES | EXTENSION_ATTRIBUTES | {"data", "data_base64"}
_NAME = re.compile(r"[a-z0-9]+")


class Envelope(msgspec.Struct, frozen=True, gc=False):
    """One event: its CloudEvents attributes and its still-encoded ``data`` (immutable).

    A ``msgspec.Struct`` because consumers build one per record (its constructor is several
    times cheaper than a dataclass's); ``gc=False`` is safe since it holds only strings, an
    int, bytes and a dict of strings. Treat ``extensions`` as read-only: it is shared, not
    copied, by :func:`msgspec.structs.replace`.
    """

    id: str
    source: str
    type: str
    specversion: str = SPECVERSION
    time: str | None = None
    subject: str | None = None
    datacontenttype: str | None = "application/json"
    dataschema: str | None = None
    partitionkey: str | None = None
    correlationid: str | None = None
    causationid: str | None = None
    traceparent: str | None = None
    dataversion: int = 1
    extensions: dict[str, str] = {}
    data: bytes = b""


def check_extension_name(name: str) -> str | None:
    """Why ``name`` cannot name an entry of :attr:`Envelope.extensions`, or ``None`` if it can.

    CloudEvents attribute names are lower-case ASCII letters and digits; the attributes
    :class:`Envelope` has fields for (and ``data``) are taken.
    """
    if _NAME.fullmatch(name) is None:
        return f"extension attribute name {name!r} is not lower-case ASCII letters and digits"
    if name in _RESERVED:
        return f"extension attribute name {name!r} is reserved (it has its own field)"
    return None


def check_envelope(envelope: Envelope) -> None:
    """Raise :class:`ValueError` unless ``envelope`` can be written so that it reads back.

    The encoders call it: the record must not be one that :func:`~eventyard.events.codec.
    decode` (of this or any CloudEvents reader) would refuse, so the mistake shows at the
    producer, not at every consumer.
    """
    if envelope.specversion != SPECVERSION:
        raise ValueError(f"specversion must be {SPECVERSION!r}, not {envelope.specversion!r}")
    if not envelope.id or not envelope.source or not envelope.type:
        empty = next(n for n in ("id", "source", "type") if not getattr(envelope, n))
        raise ValueError(f"the {empty!r} attribute must be a non-empty string")
    if not 1 <= envelope.dataversion <= MAX_DATAVERSION:
        raise ValueError(f"dataversion must be 1 to {MAX_DATAVERSION}, not {envelope.dataversion}")
    for name in envelope.extensions:
        reason = check_extension_name(name)
        if reason is not None:
            raise ValueError(reason)


def parse_dataversion(text: str, where: str) -> int:
    """``dataversion`` from its decimal digits, else :class:`~eventyard.errors.EventDecodeError`
    naming ``where`` (``int()`` alone would take ``" 1_0 "``)."""
    if text.isascii() and text.isdigit():
        version = int(text)
        if 1 <= version <= MAX_DATAVERSION:
            return version
    raise EventDecodeError(
        f"{where}: dataversion must be an integer from 1 to {MAX_DATAVERSION}, not {text!r}"
    )


def specversion_problem(specversion: object) -> str:
    """The one-line reason a record with this ``specversion`` (``None``: none) is refused."""
    if specversion is None:
        return "CloudEvent has no specversion"
    return f"unsupported CloudEvents specversion {specversion!r} (eventyard reads {SPECVERSION})"


_random = random.Random()
"""The random bits of event ids. A seeded generator, not ``os.urandom``: an id must be unique,
not secret, and the system call cost more than the rest of building an envelope. Seeded from
the OS at import and again in every forked child, so parent and child never share a stream."""
os.register_at_fork(after_in_child=_random.seed)


def _id_from(time_ns: int) -> str:
    """A UUIDv7 (RFC 9562) string for a clock reading: 48-bit milliseconds, 74 random bits."""
    rand = _random.getrandbits(74)
    value = (
        (time_ns // 1_000_000) << 80
        | 0x7 << 76
        | (rand >> 62) << 64
        | 0b10 << 62
        | rand & 0x3FFF_FFFF_FFFF_FFFF
    )
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_second: list[tuple[int, str]] = [(-1, "")]
"""The last second formatted: events are built thousands a second, formatting is not free."""


def _time_from(time_ns: int) -> str:
    seconds, micros = divmod(time_ns // 1000, 1_000_000)
    cached_second, prefix = _second[0]
    if cached_second != seconds:
        prefix = _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(seconds))
        _second[0] = (seconds, prefix)
    return f"{prefix}.{micros:06d}Z"


def new_event_id() -> str:
    """A fresh event id: a UUIDv7 in its canonical 36-character form."""
    return _id_from(_time.time_ns())


def rfc3339_now() -> str:
    """The current UTC time as RFC 3339 with microseconds and ``Z``."""
    return _time_from(_time.time_ns())


def new_envelope(
    obj: object,
    *,
    source: str,
    type: str | None = None,
    subject: str | None = None,
    key: str | None = None,
    correlationid: str | None = None,
    causationid: str | None = None,
    traceparent: str | None = None,
    datacontenttype: str | None = "application/json",
    dataschema: str | None = None,
    extensions: Mapping[str, str] | None = None,
    registry: EventRegistry = default_registry,
) -> Envelope:
    """An envelope for a typed event (or for ``data`` already encoded, as ``bytes``).

    For an instance of a registered event class, ``type`` and ``dataversion`` come from its
    registration and ``data`` is its JSON; ``type`` may be given only if it agrees. For
    ``bytes`` (or an unregistered class's instance, encoded as JSON) ``type`` is required and
    ``dataversion`` is 1. ``key`` becomes ``partitionkey``, so the record key. The id and the
    time are filled in; the result is checked as :func:`~eventyard.events.codec.encode` would.

    Raises :class:`ValueError` for a missing or conflicting ``type`` or a bad extension name.
    """
    dataversion = 1
    if isinstance(obj, bytes | bytearray | memoryview):
        data = bytes(obj)
        if type is None:
            raise ValueError("new_envelope of bytes needs type=")
    else:
        cls = obj.__class__
        if cls in registry:
            registered = registry.type_name(cls)
            if type is not None and type != registered:
                raise ValueError(
                    f"type={type!r} disagrees with {cls.__qualname__}'s registered type "
                    f"{registered!r}"
                )
            type, dataversion = registered, registry.version(cls)
        elif type is None:
            raise ValueError(
                f"{cls.__qualname__} is not a registered event type: decorate it with "
                "@event(...) or pass type="
            )
        data = registry.encode_data(obj)
    if not type:
        raise ValueError("an event type must be a non-empty string")
    if not source:
        raise ValueError("an event source must be a non-empty string")
    ext: dict[str, str] = {}
    if extensions:
        for name, value in extensions.items():
            reason = check_extension_name(name)
            if reason is not None:
                raise ValueError(reason)
            ext[name] = value
    now = _time.time_ns()
    return Envelope(
        id=_id_from(now),
        source=source,
        type=type,
        time=_time_from(now),
        subject=subject,
        datacontenttype=datacontenttype,
        dataschema=dataschema,
        partitionkey=key,
        correlationid=correlationid,
        causationid=causationid,
        traceparent=traceparent,
        dataversion=dataversion,
        extensions=ext,
        data=data,
    )
