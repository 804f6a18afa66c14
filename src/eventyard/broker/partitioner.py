"""Record placement: Kafka's murmur2 for keyed records, a sticky choice for unkeyed ones.

A keyed record must land on the partition Kafka's Java client would pick
(``org.apache.kafka.common.utils.Utils.murmur2`` with seed ``0x9747b28c``, then
``toPositive(hash) % numPartitions``), so an application moved to a real Kafka cluster keeps
its per-key order. Unkeyed records follow Kafka's sticky partitioner: every unkeyed record of
a topic goes to the same partition until the batch being filled there is completed, then the
partitioner switches to another partition at random. Large batches, not a spread of small
ones, are what makes producing cheap.
"""

from __future__ import annotations

import random
import struct
from typing import Protocol

__all__ = [
    "DefaultPartitioner",
    "Partitioner",
    "StickyPartitioner",
    "murmur2",
    "partition_for_key",
]

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS = [struct.Struct(f"<{n}I") for n in range(64)]


def murmur2(key: bytes) -> int:
    """Return Kafka's murmur2 hash of ``key`` as the Java client does: a signed 32-bit int.

    The words are unpacked in one ``struct`` call (little-endian, as Java reads them) and
    the mixing runs on Python ints masked to 32 bits, matching Java's wrapping arithmetic.
    """
    length = len(key)
    h = _SEED ^ length
    nwords = length >> 2
    if nwords < 64:
        words: tuple[int, ...] = _WORDS[nwords].unpack_from(key)
    else:
        words = struct.unpack_from(f"<{nwords}I", key)
    for k in words:
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail:
        base = length & ~3
        if tail == 3:
            h ^= key[base + 2] << 16
        if tail >= 2:
            h ^= key[base + 1] << 8
        h ^= key[base]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - 0x100000000 if h & 0x80000000 else h


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """Return the partition Kafka's default partitioner gives ``key`` among ``num_partitions``."""
    if num_partitions == 1:
        return 0
    return (murmur2(key) & 0x7FFFFFFF) % num_partitions


class Partitioner(Protocol):
    """Chooses partitions for a producer.

    ``partition`` places one record; ``batch_completed`` tells the partitioner that a batch
    of ``topic`` for ``partition`` has been handed to the broker, so a sticky strategy may
    move on. A producer calls both from its event loop only, never concurrently.
    """

    def partition(self, topic: str, key: bytes | None, num_partitions: int) -> int:
        """Return the partition in ``range(num_partitions)`` for a record with ``key``."""
        ...

    def batch_completed(self, topic: str, partition: int, num_partitions: int) -> None:
        """Note that a batch of ``topic`` for ``partition`` was sent."""
        ...


class StickyPartitioner:
    """Kafka's sticky partitioner for unkeyed records.

    Keeps one current partition per topic; when the batch of that partition completes,
    :meth:`batch_completed` switches to a different partition chosen at random (uniformly
    among the others), like the Java client's ``StickyPartitionCache.nextPartition``; a
    completed batch of another partition (a keyed one) changes nothing. The random source
    is injectable so tests can make the sequence deterministic.
    """

    __slots__ = ("_current", "_random")

    def __init__(self, rng: random.Random | None = None) -> None:
        self._random = rng if rng is not None else random.Random()
        self._current: dict[str, int] = {}

    def partition(self, topic: str, num_partitions: int) -> int:
        """Return the current partition for ``topic``, choosing one on first use."""
        current = self._current.get(topic)
        if current is None or current >= num_partitions:
            current = self._random.randrange(num_partitions)
            self._current[topic] = current
        return current

    def batch_completed(self, topic: str, partition: int, num_partitions: int) -> None:
        """Move ``topic`` to another partition if ``partition`` is its current one."""
        previous = self._current.get(topic)
        if previous is not None and previous != partition:
            return
        if num_partitions <= 1 or previous is None or previous >= num_partitions:
            self._current[topic] = self._random.randrange(num_partitions)
            return
        choice = self._random.randrange(num_partitions - 1)
        self._current[topic] = choice if choice < previous else choice + 1


class DefaultPartitioner:
    """Kafka's default strategy: murmur2 for keyed records, sticky for unkeyed ones.

    murmur2 costs a couple of microseconds in pure Python, more than encoding the record,
    and applications reuse keys (an order id, a customer id), so positive hashes of recent
    keys are cached; the cache is dropped whole when it reaches ``cache_size`` keys, which
    bounds memory without per-hit bookkeeping.
    """

    __slots__ = ("_cache", "_cache_size", "_sticky")

    def __init__(self, rng: random.Random | None = None, *, cache_size: int = 65_536) -> None:
        self._sticky = StickyPartitioner(rng)
        self._cache: dict[bytes, int] = {}
        self._cache_size = cache_size

    def partition(self, topic: str, key: bytes | None, num_partitions: int) -> int:
        """Place ``key`` by murmur2, or an unkeyed record on the sticky partition."""
        if key is None:
            return self._sticky.partition(topic, num_partitions)
        if num_partitions == 1:
            return 0
        cache = self._cache
        positive = cache.get(key)
        if positive is None:
            if len(cache) >= self._cache_size:
                cache.clear()
            positive = cache[key] = murmur2(key) & 0x7FFFFFFF
        return positive % num_partitions

    def batch_completed(self, topic: str, partition: int, num_partitions: int) -> None:
        """Let the sticky partition of ``topic`` move on once its batch was sent."""
        self._sticky.batch_completed(topic, partition, num_partitions)
