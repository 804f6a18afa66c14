"""Idempotent producer state: duplicates, gaps, epochs, reload; durable producer ids."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventyard.broker.producers import (
    ID_BLOCK_SIZE,
    REMEMBERED_BATCHES,
    ProducerIdAllocator,
    ProducerStateTable,
)
from eventyard.errors import InvalidProducerEpochError, OutOfOrderSequenceError
from eventyard.records import BatchBuilder, BatchHeader, read_header
from eventyard.storage import OSFileSystem


def header(
    producer_id: int,
    sequence: int,
    count: int,
    *,
    epoch: int = 0,
    base_offset: int = 0,
    timestamp_ms: int | None = None,
) -> BatchHeader:
    builder = BatchBuilder(producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence)
    for i in range(count):
        builder.append(b"v%d" % i, timestamp_ms=timestamp_ms)
    return read_header(builder.build(base_offset))


def test_in_order_batches_are_accepted_and_a_retry_gets_its_offsets() -> None:
    table = ProducerStateTable()
    first = header(7, 0, 3)
    assert table.check(first) is None
    table.record(first, 0, 2)
    second = header(7, 3, 2)
    assert table.check(second) is None
    table.record(second, 3, 4)
    duplicate = table.check(header(7, 0, 3))
    assert duplicate is not None
    assert (duplicate.base_offset, duplicate.last_offset) == (0, 2)
    retried = table.check(header(7, 3, 2))
    assert retried is not None and retried.base_offset == 3


def test_only_the_last_five_batches_are_remembered() -> None:
    table = ProducerStateTable()
    for n in range(7):
        batch = header(1, n, 1)
        assert table.check(batch) is None
        table.record(batch, n, n)
    assert table.check(header(1, 6, 1)) is not None
    assert table.check(header(1, 2, 1)) is not None
    with pytest.raises(OutOfOrderSequenceError, match="expected 7"):
        table.check(header(1, 1, 1))


def test_a_gap_is_refused() -> None:
    table = ProducerStateTable()
    table.record(header(1, 0, 5), 0, 4)
    with pytest.raises(OutOfOrderSequenceError, match="sent sequence 6, expected 5"):
        table.check(header(1, 6, 1))


def test_a_stale_epoch_is_fenced_and_a_new_epoch_restarts_at_zero() -> None:
    table = ProducerStateTable()
    table.record(header(1, 0, 2, epoch=3), 0, 1)
    with pytest.raises(InvalidProducerEpochError):
        table.check(header(1, 2, 1, epoch=2))
    with pytest.raises(OutOfOrderSequenceError, match="not 0"):
        table.check(header(1, 5, 1, epoch=4))
    bumped = header(1, 0, 1, epoch=4)
    assert table.check(bumped) is None
    table.record(bumped, 2, 2)
    with pytest.raises(InvalidProducerEpochError):
        table.check(header(1, 2, 1, epoch=3))


def test_unknown_producers_and_plain_batches_are_accepted() -> None:
    table = ProducerStateTable()
    assert table.check(header(9, 1234, 1)) is None
    assert table.check(header(-1, -1, 3)) is None
    table.record(header(-1, -1, 3), 0, 2)
    assert len(table) == 0


def test_sequences_wrap_after_int32_max() -> None:
    table = ProducerStateTable()
    table.record(header(1, 2**31 - 2, 2), 0, 1)
    assert table.check(header(1, 0, 1)) is None


def test_pending_checks_a_multi_batch_payload_as_a_whole() -> None:
    table = ProducerStateTable()
    table.record(header(1, 0, 2), 0, 1)
    pending: dict[int, tuple[int, int]] = {}
    assert table.check(header(1, 2, 2), pending) is None
    assert table.check(header(1, 4, 1), pending) is None
    with pytest.raises(OutOfOrderSequenceError):
        table.check(header(1, 9, 1), pending)


def test_load_rebuilds_the_state_from_stored_headers() -> None:
    table = ProducerStateTable()
    table.load([header(4, 0, 10, base_offset=0), header(4, 10, 10, base_offset=10)])
    duplicate = table.check(header(4, 10, 10))
    assert duplicate is not None and (duplicate.base_offset, duplicate.last_offset) == (10, 19)
    with pytest.raises(OutOfOrderSequenceError):
        table.check(header(4, 21, 1))


def test_silent_producers_expire_and_are_then_accepted_anywhere() -> None:
    table = ProducerStateTable()
    table.record(header(1, 0, 1, timestamp_ms=1_000), 0, 0)
    table.record(header(2, 0, 1, timestamp_ms=5_000), 1, 1)
    assert table.expire(before_ms=3_000) == 1
    assert len(table) == 1
    assert table.check(header(1, 40, 1)) is None
    with pytest.raises(OutOfOrderSequenceError):
        table.check(header(2, 40, 1))


def test_producer_ids_increase_and_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "producer_ids.json"
    allocator = ProducerIdAllocator(path, OSFileSystem())
    first = [allocator.allocate() for _ in range(3)]
    assert first == [(0, 0), (1, 0), (2, 0)]
    again = ProducerIdAllocator(path, OSFileSystem())
    assert again.allocate() == (ID_BLOCK_SIZE, 0)
    many = [again.allocate()[0] for _ in range(ID_BLOCK_SIZE + 5)]
    assert many == sorted(set(many))
    third = ProducerIdAllocator(path, OSFileSystem())
    assert third.allocate()[0] > many[-1]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_retries_within_the_window_append_every_batch_exactly_once(data: st.DataObject) -> None:
    """Three producers send batches; any of their last five may be re-delivered at any time."""
    table = ProducerStateTable()
    log: list[tuple[int, int]] = []  # (producer, first sequence) per appended batch
    offsets: dict[tuple[int, int], tuple[int, int]] = {}
    next_sequence = {p: 0 for p in range(3)}
    sent: dict[int, list[tuple[int, int]]] = {p: [] for p in range(3)}
    for _ in range(data.draw(st.integers(1, 40))):
        producer = data.draw(st.integers(0, 2))
        recent = sent[producer][-REMEMBERED_BATCHES:]
        if bool(recent) and data.draw(st.booleans()):
            first, count = data.draw(st.sampled_from(recent))
        else:
            first, count = next_sequence[producer], data.draw(st.integers(1, 4))
            next_sequence[producer] += count
            sent[producer].append((first, count))
        batch = header(producer, first, count)
        duplicate = table.check(batch)
        if duplicate is None:
            base = offsets[log[-1]][1] + 1 if log else 0
            log.append((producer, first))
            offsets[(producer, first)] = (base, base + count - 1)
            table.record(batch, base, base + count - 1)
        else:
            assert (duplicate.base_offset, duplicate.last_offset) == offsets[(producer, first)]
    for producer in range(3):
        assert [f for p, f in log if p == producer] == [f for f, _ in sent[producer]]
