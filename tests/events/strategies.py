"""Hypothesis strategies shared by the events tests: arbitrary valid envelopes."""

from __future__ import annotations

import msgspec
from hypothesis import strategies as st

from eventyard.events import Envelope
from eventyard.events.envelope import MAX_DATAVERSION, check_extension_name

TEXT = st.text(st.characters(codec="utf-8"), max_size=30)
"""Attribute values: any Unicode a UTF-8 header or JSON string can carry (no lone surrogates)."""

REQUIRED = TEXT.filter(bool)
OPTIONAL = st.none() | TEXT
EXTENSION_NAMES = st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True).filter(
    lambda name: check_extension_name(name) is None
)
CONTENT_TYPES = st.none() | st.sampled_from(
    [
        "application/json",
        "application/cloudevents+json",
        "text/json; charset=utf-8",
        "application/vnd.eventyard+json",
        "text/plain",
        "application/octet-stream",
        "application/avro",
        "",
    ]
)
JSON_DATA = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
DATA = st.binary(max_size=200) | JSON_DATA.map(msgspec.json.encode)
"""Data: arbitrary bytes (valid JSON or not) and JSON documents."""


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    """Any envelope :func:`eventyard.events.encode` accepts."""
    return Envelope(
        id=draw(REQUIRED),
        source=draw(REQUIRED),
        type=draw(REQUIRED),
        time=draw(OPTIONAL),
        subject=draw(OPTIONAL),
        datacontenttype=draw(CONTENT_TYPES),
        dataschema=draw(OPTIONAL),
        partitionkey=draw(OPTIONAL),
        correlationid=draw(OPTIONAL),
        causationid=draw(OPTIONAL),
        traceparent=draw(OPTIONAL),
        dataversion=draw(st.integers(min_value=1, max_value=MAX_DATAVERSION)),
        extensions=draw(st.dictionaries(EXTENSION_NAMES, TEXT, max_size=3)),
        data=draw(DATA),
    )
