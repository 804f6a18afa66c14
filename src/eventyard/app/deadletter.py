"""Records that carry a failure: dead letters and delayed retries, and their headers.

A failed event is never rewritten: its dead letter (or its retry) is the original record,
same key, same value, same headers (so the same event id), with headers added that say what
went wrong. The added headers, all UTF-8:

==============================  ==================================================
``eventyard-dlq-error-type``    the exception's qualified class name
``eventyard-dlq-error``         its message (one line, at most 1,000 characters)
``eventyard-dlq-traceback``     the formatted traceback (at most 8,000 characters)
``eventyard-dlq-reason``        ``handler``, ``decode``, ``validation`` or ``timeout``
``eventyard-dlq-attempts``      how many times the handler ran
``eventyard-original-topic``    where the event was first read from
``eventyard-original-partition``
``eventyard-original-offset``
``eventyard-group``             the consumer group whose handler failed
``eventyard-first-failure-ms``  epoch milliseconds of the first failure
``eventyard-retry-due-ms``      (retries only) when the next attempt may run
``eventyard-retry-attempt``     (retries only) the number of the next attempt
==============================  ==================================================

A retry of a retry replaces these headers rather than stacking them, so a record carries one
set however often it failed. :func:`strip_failure_headers` gives back the original headers,
which is what a redrive republishes.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

from eventyard.transports import Message, Outgoing

__all__ = [
    "FAILURE_PREFIXES",
    "DeadLetter",
    "Failure",
    "dead_letter",
    "parse_dead_letter",
    "redrive_record",
    "retry_record",
    "strip_failure_headers",
]

Headers = tuple[tuple[str, bytes | None], ...]

FAILURE_PREFIXES = ("eventyard-dlq-", "eventyard-retry-", "eventyard-original-")
_GROUP = "eventyard-group"
_FIRST = "eventyard-first-failure-ms"
_MAX_MESSAGE = 1_000
_MAX_TRACE = 8_000


@dataclass(frozen=True, slots=True)
class Failure:
    """Why an event failed, how often, and where it came from."""

    reason: str
    error: BaseException | None
    message: str
    attempts: int
    first_failure_ms: int
    origin: tuple[str, int, int]
    """``(topic, partition, offset)`` of the event's first delivery."""

    @classmethod
    def of(
        cls,
        reason: str,
        error: BaseException | None,
        attempts: int,
        origin: tuple[str, int, int],
        first_failure_ms: int | None = None,
        message: str | None = None,
    ) -> Failure:
        text = message if message is not None else (str(error) if error is not None else "")
        return cls(
            reason=reason,
            error=error,
            message=" ".join(text.split())[:_MAX_MESSAGE],
            attempts=attempts,
            first_failure_ms=first_failure_ms or int(time.time() * 1000),
            origin=origin,
        )


def strip_failure_headers(headers: Sequence[tuple[str, bytes | None]]) -> Headers:
    """The headers without any that eventyard added for a failure."""
    return tuple(
        (name, value)
        for name, value in headers
        if name != _GROUP and name != _FIRST and not name.startswith(FAILURE_PREFIXES)
    )


def _failure_headers(failure: Failure, group: str) -> list[tuple[str, bytes | None]]:
    error = failure.error
    kind = "" if error is None else f"{type(error).__module__}.{type(error).__qualname__}"
    trace = "" if error is None else "".join(traceback.format_exception(error))[-_MAX_TRACE:]
    topic, partition, offset = failure.origin
    return [
        ("eventyard-dlq-error-type", kind.encode()),
        ("eventyard-dlq-error", failure.message.encode()),
        ("eventyard-dlq-traceback", trace.encode()),
        ("eventyard-dlq-reason", failure.reason.encode()),
        ("eventyard-dlq-attempts", str(failure.attempts).encode()),
        ("eventyard-original-topic", topic.encode()),
        ("eventyard-original-partition", str(partition).encode()),
        ("eventyard-original-offset", str(offset).encode()),
        (_GROUP, group.encode()),
        (_FIRST, str(failure.first_failure_ms).encode()),
    ]


def dead_letter(message: Message, failure: Failure, group: str) -> Outgoing:
    """The dead letter of ``message``: the original record plus the failure headers."""
    headers = (*strip_failure_headers(message.headers), *_failure_headers(failure, group))
    return Outgoing(message.key, message.value, headers, None, message.timestamp)


def retry_record(message: Message, failure: Failure, group: str, due_ms: int) -> Outgoing:
    """The record that schedules attempt ``failure.attempts + 1`` of ``message`` at ``due_ms``."""
    headers = (
        *strip_failure_headers(message.headers),
        *_failure_headers(failure, group),
        ("eventyard-retry-due-ms", str(due_ms).encode()),
        ("eventyard-retry-attempt", str(failure.attempts + 1).encode()),
    )
    return Outgoing(message.key, message.value, headers, None, message.timestamp)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead letter as ``eventyard dlq`` shows it: the record and its failure headers."""

    message: Message
    error_type: str
    error: str
    traceback: str
    reason: str
    attempts: int
    original_topic: str
    original_partition: int
    original_offset: int
    group: str
    first_failure_ms: int
    due_ms: int | None
    next_attempt: int | None


def _text(headers: dict[str, bytes | None], name: str) -> str:
    value = headers.get(name)
    return value.decode("utf-8", "replace") if value else ""


def _int(headers: dict[str, bytes | None], name: str, default: int = -1) -> int:
    try:
        return int(_text(headers, name))
    except ValueError:
        return default


def parse_dead_letter(message: Message) -> DeadLetter:
    """Read the failure headers of a dead letter or retry record (absent ones are empty)."""
    headers = dict(message.headers)
    due = _int(headers, "eventyard-retry-due-ms")
    attempt = _int(headers, "eventyard-retry-attempt")
    return DeadLetter(
        message=message,
        error_type=_text(headers, "eventyard-dlq-error-type"),
        error=_text(headers, "eventyard-dlq-error"),
        traceback=_text(headers, "eventyard-dlq-traceback"),
        reason=_text(headers, "eventyard-dlq-reason"),
        attempts=_int(headers, "eventyard-dlq-attempts", 0),
        original_topic=_text(headers, "eventyard-original-topic"),
        original_partition=_int(headers, "eventyard-original-partition"),
        original_offset=_int(headers, "eventyard-original-offset"),
        group=_text(headers, _GROUP),
        first_failure_ms=_int(headers, _FIRST, 0),
        due_ms=due if due >= 0 else None,
        next_attempt=attempt if attempt >= 0 else None,
    )


def redrive_record(dead: DeadLetter, to_retry_lane: bool) -> Outgoing:
    """The record that replays ``dead``: the original key, value and headers (event id kept).

    For the group's own retry lane (``to_retry_lane``) it is due at once as attempt 1 and
    keeps the original topic, partition and offset; for any other topic it is the original
    record alone.
    """
    message = dead.message
    headers = strip_failure_headers(message.headers)
    if to_retry_lane:
        headers = (
            *headers,
            ("eventyard-original-topic", dead.original_topic.encode()),
            ("eventyard-original-partition", str(dead.original_partition).encode()),
            ("eventyard-original-offset", str(dead.original_offset).encode()),
            ("eventyard-retry-due-ms", str(int(time.time() * 1000)).encode()),
            ("eventyard-retry-attempt", b"1"),
        )
    return Outgoing(message.key, message.value, headers, None, message.timestamp)
