"""Record batches built from the generated events, for scenarios that bypass the producer.

The storage scenarios append ready batches (as the broker does after a producer's request is
validated), so what they time is the log, not the encoder. The batches are real record batch
v2 bytes built by :class:`eventyard.records.BatchBuilder` from the same generated events.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.events import Event, EventPool
from eventyard.records import HEADER_SIZE, BatchBuilder

__all__ = ["encode", "sized_batch"]

_RECORD_OVERHEAD = 8
"""Bytes a small record adds to its key and value (length, attributes, deltas, sizes)."""


def encode(events: Sequence[Event], timestamp_ms: int = 1_795_000_000_000) -> bytes:
    """One uncompressed batch of ``events`` with a fixed timestamp (deterministic bytes)."""
    builder = BatchBuilder()
    for event in events:
        builder.append(event.value, key=event.key, timestamp_ms=timestamp_ms)
    return builder.build()


def sized_batch(pool: EventPool, max_bytes: int) -> tuple[bytes, int]:
    """The largest batch of the pool's first events that fits in ``max_bytes``.

    Returns the batch and its record count; the pool must hold enough events.
    """
    events = [event for batch in pool.batches for event in batch]
    budget = max_bytes - HEADER_SIZE
    count = 0
    for event in events:
        need = len(event.key) + len(event.value) + _RECORD_OVERHEAD
        if need > budget:
            break
        budget -= need
        count += 1
    batch = encode(events[:count])
    while len(batch) > max_bytes:
        count -= 1
        batch = encode(events[:count])
    return batch, count
