"""Record: an immutable value with equality, as consumers and encode_batch use it."""

from __future__ import annotations

import pytest

from eventyard.records import Record


def test_fields_equality_and_defaults() -> None:
    record = Record(5, 1000, b"k", b"v", (("h", None),))
    assert (record.offset, record.timestamp, record.key, record.value) == (5, 1000, b"k", b"v")
    assert record.headers == (("h", None),)
    assert record == Record(5, 1000, b"k", b"v", (("h", None),))
    assert record != Record(6, 1000, b"k", b"v", (("h", None),))
    assert Record(0, 0, None, None).headers == ()


def test_records_are_immutable_and_hashable() -> None:
    record = Record(5, 1000, None, b"v", ())
    with pytest.raises(AttributeError):
        record.value = b"other"  # type: ignore[misc]
    assert len({record, Record(5, 1000, None, b"v", ())}) == 1
