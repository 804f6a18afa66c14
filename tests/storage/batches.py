"""Record batches for storage tests, built with the real codec."""

from __future__ import annotations

from eventyard.records import BatchBuilder, decode_batches


def make_batch(
    *values: bytes | None,
    key: bytes | None = None,
    keys: list[bytes | None] | None = None,
    timestamp_ms: int = 1_000,
) -> bytes:
    """One batch of ``values`` (keyed by ``key``, or per record by ``keys``)."""
    builder = BatchBuilder()
    for i, value in enumerate(values):
        record_key = keys[i] if keys is not None else key
        builder.append(value, key=record_key, timestamp_ms=timestamp_ms + i)
    return builder.build()


def payload(offset: int, size: int = 40) -> bytes:
    """A value that names its batch, so a test can check content as well as offsets."""
    return (b"event-%08d-" % offset).ljust(size, b".")


def values_in(data: bytes) -> list[tuple[int, bytes | None]]:
    """``(offset, value)`` of every record in a read result."""
    return [(record.offset, record.value) for record in decode_batches(data)]
