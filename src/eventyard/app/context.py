"""What a handler may ask about the event it handles, and how it asks to publish more.

A handler with a second parameter receives a :class:`Context`: the CloudEvent envelope, the
record it came from (topic, partition, offset, timestamp), and the attempt number (1 on the
first delivery). A handler publishes follow-up events by returning them: one object, a
:class:`Publish`, or a list of either. Returned events are published before the handled
event is committed, with ``causationid`` set to the handled event's id and ``correlationid``
carried over (or started from the handled event's id), so a chain of events can be followed
from its cause.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventyard.events import Envelope
    from eventyard.transports import Message

__all__ = ["Context", "Publish"]


@dataclass(frozen=True, slots=True)
class Publish:
    """An event a handler returns to be published to ``topic`` (key: the partition key)."""

    topic: str
    event: Any
    key: str | bytes | None = None
    subject: str | None = None
    id: str | None = None
    """The event id; default a fresh one. A handler that may run twice for one input (after
    a crash, before the commit) gives a deterministic id, so readers deduplicate it."""


@dataclass(frozen=True, slots=True)
class Context:
    """The envelope and record of the event being handled, and which attempt this is."""

    envelope: Envelope
    message: Message
    attempt: int
    group: str

    @property
    def event_id(self) -> str:
        return self.envelope.id
