"""murmur2 and placement equal Kafka's Java client; the sticky partitioner sticks per batch."""

from __future__ import annotations

import random
import warnings
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventyard.broker.partitioner import (
    DefaultPartitioner,
    StickyPartitioner,
    murmur2,
    partition_for_key,
)

with warnings.catch_warnings():
    # kafka-python's package import uses a deprecated importlib.resources call.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.partitioner.default import murmur2 as kafka_python_murmur2  # type: ignore[import-untyped]

# Vectors from Kafka's own test suite (org.apache.kafka.common.utils.UtilsTest#testMurmur2).
JAVA_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("key", "expected"), JAVA_VECTORS)
def test_murmur2_matches_the_java_client(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


@given(st.binary(max_size=600))
def test_murmur2_matches_kafka_python(key: bytes) -> None:
    assert murmur2(key) & 0xFFFFFFFF == kafka_python_murmur2(key)
    assert -(2**31) <= murmur2(key) < 2**31


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=1000))
def test_partition_for_key_is_kafkas_default_placement(key: bytes, n: int) -> None:
    assert partition_for_key(key, n) == (kafka_python_murmur2(key) & 0x7FFFFFFF) % n


def test_known_keys_land_where_kafka_puts_them() -> None:
    # toPositive(-973932308) % 12 computed by hand: 1173551340 % 12 == 0
    assert partition_for_key(b"21", 12) == (-973932308 & 0x7FFFFFFF) % 12 == 0
    assert partition_for_key(b"abc", 7) == 479470107 % 7


def test_sticky_partitioner_sticks_until_the_batch_completes() -> None:
    sticky = StickyPartitioner(random.Random(7))
    first = sticky.partition("t", 6)
    assert all(sticky.partition("t", 6) == first for _ in range(100))
    sticky.batch_completed("t", (first + 1) % 6, 6)
    assert sticky.partition("t", 6) == first, "another partition's batch changes nothing"
    sticky.batch_completed("t", first, 6)
    second = sticky.partition("t", 6)
    assert second != first
    assert sticky.partition("other", 6) in range(6)


def test_sticky_partitioner_spreads_batches_over_every_partition() -> None:
    sticky = StickyPartitioner(random.Random(1))
    seen: Counter[int] = Counter()
    previous = None
    for _ in range(600):
        current = sticky.partition("t", 4)
        assert current != previous
        seen[current] += 1
        previous = current
        sticky.batch_completed("t", current, 4)
    assert set(seen) == {0, 1, 2, 3}
    assert min(seen.values()) > 100


def test_sticky_partitioner_with_one_partition_and_shrinking_count() -> None:
    sticky = StickyPartitioner(random.Random(3))
    sticky.batch_completed("t", 0, 1)
    assert sticky.partition("t", 1) == 0
    for _ in range(20):
        current = sticky.partition("u", 10)
        assert current < 10
        sticky.batch_completed("u", current, 10)
    assert sticky.partition("u", 2) < 2


def test_default_partitioner_hashes_keys_and_sticks_for_none() -> None:
    partitioner = DefaultPartitioner(random.Random(5))
    assert partitioner.partition("t", b"abc", 7) == 479470107 % 7
    unkeyed = partitioner.partition("t", None, 7)
    assert partitioner.partition("t", None, 7) == unkeyed
    partitioner.batch_completed("t", unkeyed, 7)
    assert partitioner.partition("t", None, 7) != unkeyed


def test_default_partitioner_cache_never_changes_placement() -> None:
    partitioner = DefaultPartitioner(cache_size=4)
    keys = [b"k%d" % i for i in range(20)]
    for _ in range(3):
        for n in (1, 3, 12):
            assert [partitioner.partition("t", k, n) for k in keys] == [
                partition_for_key(k, n) for k in keys
            ]
