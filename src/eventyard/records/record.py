"""The decoded record: the value type consumers see and :func:`encode_batch` writes back."""

from __future__ import annotations

import msgspec

__all__ = ["Header", "Record"]

Header = tuple[str, bytes | None]
"""One record header: a UTF-8 name and a value that may be null."""


class Record(msgspec.Struct, frozen=True, gc=False):
    """One record of a batch, with its absolute offset and timestamp (immutable).

    ``timestamp`` is milliseconds since the epoch: the producer's create time, or the
    batch's ``max_timestamp`` when the broker stamped the batch with log-append time.
    ``key`` and ``value`` are ``None`` when null (a null value is a tombstone).

    A ``msgspec.Struct`` because a consumer builds hundreds of thousands a second and its
    constructor is several times cheaper than a dataclass's or a NamedTuple's; ``gc=False``
    is safe since a record holds only ints, bytes, strings and tuples of them.
    """

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()
