"""Hypothesis strategies shared by the records tests: arbitrary records and batches."""

from __future__ import annotations

from hypothesis import strategies as st

from eventyard.records import Compression, Header

TIMESTAMPS = st.integers(min_value=-1, max_value=1 << 50)
KEYS = st.none() | st.binary(max_size=40)
VALUES = st.none() | st.binary(max_size=300)
HEADERS: st.SearchStrategy[tuple[Header, ...]] = st.lists(
    st.tuples(st.text(max_size=12), st.none() | st.binary(max_size=20)), max_size=3
).map(tuple)
COMPRESSIONS = st.sampled_from(list(Compression))

RecordArgs = tuple[bytes | None, bytes | None, tuple[Header, ...], int]
"""What a producer appends: ``(value, key, headers, timestamp_ms)``."""

RECORD_ARGS: st.SearchStrategy[RecordArgs] = st.tuples(VALUES, KEYS, HEADERS, TIMESTAMPS)

INTEROP_RECORD_ARGS: st.SearchStrategy[RecordArgs] = st.tuples(
    VALUES, KEYS, HEADERS, st.integers(min_value=0, max_value=1 << 50)
)
"""Records for cross-checks with other clients: aiokafka's C builder replaces a negative
timestamp (Kafka's -1, "no timestamp") with another value, so create times are >= 0."""
