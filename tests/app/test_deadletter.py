"""Dead letters and retry records: the original record plus one set of failure headers."""

from __future__ import annotations

from eventyard.app.deadletter import (
    Failure,
    dead_letter,
    parse_dead_letter,
    redrive_record,
    retry_record,
    strip_failure_headers,
)
from eventyard.client import ConsumerRecord
from eventyard.transports import Outgoing

ORIGINAL_HEADERS = (("ce_id", b"evt-1"), ("trace", None), ("eventyard-note", b"kept"))


class PaymentDeclined(Exception):
    pass


def raised(message: str) -> PaymentDeclined:
    try:
        raise PaymentDeclined(message)
    except PaymentDeclined as exc:
        return exc


def received(record: Outgoing, topic: str, offset: int) -> ConsumerRecord:
    """``record`` as a consumer reads it back from ``topic`` at ``offset``."""
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp=record.timestamp_ms or 0,
        key=record.key,
        value=record.value,
        headers=record.headers,
    )


ORIGINAL = ConsumerRecord(
    topic="orders",
    partition=2,
    offset=41,
    timestamp=1_700_000_000_000,
    key=b"customer-7",
    value=b'{"n": 41}',
    headers=ORIGINAL_HEADERS,
)


def headers_named(record: Outgoing | ConsumerRecord, name: str) -> list[bytes | None]:
    return [value for key, value in record.headers if key == name]


def test_a_dead_letter_is_the_original_record_plus_failure_headers() -> None:
    failure = Failure.of("handler", raised("card expired"), 3, ("orders", 2, 41), 1_700_000_000_500)
    record = dead_letter(ORIGINAL, failure, "billing")
    assert (record.key, record.value, record.timestamp_ms) == (
        ORIGINAL.key,
        ORIGINAL.value,
        ORIGINAL.timestamp,
    )
    assert record.partition is None
    assert record.headers[: len(ORIGINAL_HEADERS)] == ORIGINAL_HEADERS

    letter = parse_dead_letter(received(record, "orders.billing.dlq", 0))
    assert letter.error_type == f"{__name__}.PaymentDeclined"
    assert letter.error == "card expired"
    assert "PaymentDeclined: card expired" in letter.traceback
    assert "Traceback (most recent call last)" in letter.traceback
    assert letter.reason == "handler"
    assert letter.attempts == 3
    assert (letter.original_topic, letter.original_partition, letter.original_offset) == (
        "orders",
        2,
        41,
    )
    assert letter.group == "billing"
    assert letter.first_failure_ms == 1_700_000_000_500
    assert letter.due_ms is None
    assert letter.next_attempt is None
    assert letter.message.value == ORIGINAL.value


def test_a_retry_record_says_when_and_which_attempt_runs_next() -> None:
    failure = Failure.of("timeout", TimeoutError(), 1, ("orders", 2, 41))
    record = retry_record(ORIGINAL, failure, "billing", due_ms=1_800_000_000_000)
    letter = parse_dead_letter(received(record, "orders.billing.retry.0", 5))
    assert letter.due_ms == 1_800_000_000_000
    assert letter.next_attempt == 2
    assert letter.reason == "timeout"
    assert letter.error_type == "builtins.TimeoutError"
    assert letter.error == ""
    assert letter.first_failure_ms > 0


def test_a_second_failure_replaces_the_headers_instead_of_stacking_them() -> None:
    first = retry_record(
        ORIGINAL, Failure.of("handler", raised("one"), 1, ("orders", 2, 41), 111), "billing", 222
    )
    again = received(first, "orders.billing.retry.0", 0)
    second = retry_record(
        again, Failure.of("handler", raised("two"), 2, ("orders", 2, 41), 111), "billing", 333
    )
    dead = dead_letter(
        received(second, "orders.billing.retry.1", 0),
        Failure.of("handler", raised("three"), 3, ("orders", 2, 41), 111),
        "billing",
    )
    names = [name for name, _ in dead.headers]
    assert len(names) == len(set(names)), f"headers stacked: {names}"
    assert headers_named(dead, "eventyard-dlq-error") == [b"three"]
    assert headers_named(dead, "eventyard-dlq-attempts") == [b"3"]
    assert headers_named(dead, "eventyard-retry-due-ms") == []
    assert headers_named(dead, "eventyard-first-failure-ms") == [b"111"]
    assert dead.headers[: len(ORIGINAL_HEADERS)] == ORIGINAL_HEADERS
    assert strip_failure_headers(dead.headers) == ORIGINAL_HEADERS


def test_strip_failure_headers_keeps_everything_else_in_order() -> None:
    headers = (
        ("a", b"1"),
        ("eventyard-dlq-error", b"x"),
        ("eventyard-group", b"g"),
        ("b", None),
        ("eventyard-retry-attempt", b"2"),
        ("eventyard-original-topic", b"t"),
        ("eventyard-first-failure-ms", b"5"),
        ("eventyard-other", b"mine"),
    )
    assert strip_failure_headers(headers) == (
        ("a", b"1"),
        ("b", None),
        ("eventyard-other", b"mine"),
    )
    assert strip_failure_headers(()) == ()


def test_failure_messages_are_one_line_and_bounded() -> None:
    failure = Failure.of("handler", raised("line one\n  line two\t" + "x" * 5000), 1, ("t", 0, 0))
    assert failure.message.startswith("line one line two x")
    assert len(failure.message) == 1000
    assert Failure.of("decode", None, 0, ("t", 0, 0), message="bad\njson").message == "bad json"
    dead = dead_letter(ORIGINAL, Failure.of("decode", None, 0, ("t", 0, 0)), "g")
    letter = parse_dead_letter(received(dead, "t.g.dlq", 0))
    assert (letter.error_type, letter.error, letter.traceback) == ("", "", "")


def test_redrive_into_the_retry_lane_is_due_now_as_attempt_one() -> None:
    failure = Failure.of("handler", raised("boom"), 3, ("orders", 2, 41))
    letter = parse_dead_letter(received(dead_letter(ORIGINAL, failure, "billing"), "x.dlq", 9))
    record = redrive_record(letter, to_retry_lane=True)
    assert (record.key, record.value) == (ORIGINAL.key, ORIGINAL.value)
    replay = parse_dead_letter(received(record, "orders.billing.retry.0", 0))
    assert replay.next_attempt == 1
    assert replay.due_ms is not None and replay.due_ms > 0
    assert (replay.original_topic, replay.original_partition, replay.original_offset) == (
        "orders",
        2,
        41,
    )
    assert replay.error == "" and replay.attempts == 0, "the old failure is gone"
    assert strip_failure_headers(record.headers) == ORIGINAL_HEADERS


def test_redrive_elsewhere_is_the_original_record_alone() -> None:
    failure = Failure.of("handler", raised("boom"), 3, ("orders", 2, 41))
    letter = parse_dead_letter(received(dead_letter(ORIGINAL, failure, "billing"), "x.dlq", 9))
    record = redrive_record(letter, to_retry_lane=False)
    expected = Outgoing(ORIGINAL.key, ORIGINAL.value, ORIGINAL_HEADERS, None, ORIGINAL.timestamp)
    assert record == expected


def test_parse_dead_letter_of_a_plain_record_is_empty() -> None:
    letter = parse_dead_letter(ORIGINAL)
    assert (letter.reason, letter.error, letter.group, letter.original_topic) == ("", "", "", "")
    assert (letter.attempts, letter.original_partition, letter.original_offset) == (0, -1, -1)
    assert (letter.due_ms, letter.next_attempt, letter.first_failure_ms) == (None, None, 0)
    garbled = ConsumerRecord("t.g.dlq", 0, 0, 0, None, None, (("eventyard-dlq-attempts", b"many"),))
    assert parse_dead_letter(garbled).attempts == 0
