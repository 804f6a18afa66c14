"""Consumer-protocol codecs, checked byte for byte against kafka-python's encodings."""

from __future__ import annotations

import contextlib
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

with warnings.catch_warnings():
    # kafka-python loads its schemas with a deprecated importlib.resources call.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.protocol.consumer.metadata import (
        ConsumerProtocolAssignment as KafkaAssignment,
    )
    from kafka.protocol.consumer.metadata import (
        ConsumerProtocolSubscription as KafkaSubscription,
    )

from eventyard.broker.groups.protocol import (
    Assignment,
    Subscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from eventyard.errors import InvalidRequestError

topics = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
    min_size=1,
    max_size=30,
)
partitions = st.lists(st.integers(0, 2**31 - 1), max_size=8).map(tuple)
topic_partitions = st.lists(st.tuples(topics, partitions), max_size=5).map(tuple)
user_data = st.one_of(st.none(), st.binary(max_size=40))


def _kafka_subscription(s: Subscription) -> bytes:
    owned = [
        KafkaSubscription.TopicPartition(topic=t, partitions=list(p)) for t, p in s.owned_partitions
    ]
    value = KafkaSubscription(
        version=s.version, topics=list(s.topics), user_data=s.user_data, owned_partitions=owned
    )
    return bytes(value.encode(version=s.version))


@given(st.lists(topics, max_size=6), user_data, topic_partitions, st.sampled_from([0, 1]))
def test_subscription_matches_kafka_python(
    topic_list: list[str],
    data: bytes | None,
    owned: tuple[tuple[str, tuple[int, ...]], ...],
    version: int,
) -> None:
    subscription = Subscription(tuple(topic_list), data, owned if version else (), version)
    encoded = encode_subscription(subscription)
    assert encoded == _kafka_subscription(subscription)
    assert decode_subscription(encoded) == subscription


@given(topic_partitions, user_data, st.sampled_from([0, 1]))
def test_assignment_matches_kafka_python(
    owned: tuple[tuple[str, tuple[int, ...]], ...], data: bytes | None, version: int
) -> None:
    assignment = Assignment(owned, data, version)
    encoded = encode_assignment(assignment)
    theirs = KafkaAssignment(
        version=version, assigned_partitions=[(t, list(p)) for t, p in owned], user_data=data
    ).encode(version=version)
    assert encoded == bytes(theirs)
    assert decode_assignment(encoded) == assignment
    decoded = KafkaAssignment.decode(encoded, version=version)
    assert [(tp.topic, tuple(tp.partitions)) for tp in decoded.assigned_partitions] == list(owned)


def test_newer_versions_decode_their_known_fields() -> None:
    # A Java 3.x consumer sends v3: generation id and rack id follow the v1 fields.
    value = KafkaSubscription(
        version=3,
        topics=["orders"],
        user_data=None,
        owned_partitions=[KafkaSubscription.TopicPartition(topic="orders", partitions=[1])],
        generation_id=7,
        rack_id="r1",
    )
    decoded = decode_subscription(bytes(value.encode(version=3)))
    assert decoded == Subscription(("orders",), None, (("orders", (1,)),), 3)


def test_empty_assignment_bytes_mean_no_partitions() -> None:
    assert decode_assignment(b"") == Assignment()


@given(st.binary(max_size=64))
def test_garbage_raises_nothing_but_invalid_request(data: bytes) -> None:
    for decode in (decode_subscription, decode_assignment):
        with contextlib.suppress(InvalidRequestError):
            decode(data)


@pytest.mark.parametrize(
    "data",
    [b"\x00", b"\x00\x00\x00\x00\x00\x05", b"\x00\x00\x00\x00\x00\x01\x00\x09ab", b"\xff\xff"],
)
def test_truncated_or_negative_input_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidRequestError):
        decode_subscription(data)


def test_writing_an_unknown_version_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        encode_subscription(Subscription(("t",), version=3))
    with pytest.raises(ValueError):
        encode_assignment(Assignment(version=2))
