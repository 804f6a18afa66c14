"""The consumer-group API handlers, called directly with an in-process ``Broker``.

Every answer is also written with kio's writer for its version, so a field missing in one
version fails here rather than on a client's connection.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode

from eventyard.broker import Broker, BrokerConfig, TopicConfig
from eventyard.broker.groups import GroupConfig
from eventyard.errors import EventyardError, RebalanceInProgressError
from eventyard.protocols.kafka.apis._entities import build, error_code
from eventyard.protocols.kafka.registry import load_all, supported
from tests.protocols.kafka.handlers import call_handler

FIND_COORDINATOR, JOIN, HEARTBEAT, LEAVE, SYNC, DESCRIBE, LIST = 10, 11, 12, 13, 14, 15, 16
COMMIT, FETCH = 8, 9
MS = datetime.timedelta(milliseconds=1)


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    config = BrokerConfig(groups=GroupConfig(initial_rebalance_delay_ms=50))
    async with await Broker.open(tmp_path, config) as opened:
        await opened.create_topic("orders", TopicConfig(partitions=2))
        yield opened


def request(api_key: int, version: int, **values: Any) -> Any:
    """A kio request of ``api_key``/``version``; nested entities via :func:`entity`."""
    return load_request_schema(api_key, version)(**values)


def entity(api_key: int, version: int, entity_name: str, /, **values: Any) -> Any:
    module = importlib.import_module(load_request_schema(api_key, version).__module__)
    return getattr(module, entity_name)(**values)


async def call(broker: Broker, api_key: int, version: int, body: Any) -> Any:
    return await call_handler(
        broker, api_key, version, body, client_host="/127.0.0.1", advertised_host="broker.example"
    )


def join_request(version: int, member_id: str = "", **extra: Any) -> Any:
    protocols = (entity(JOIN, version, "JoinGroupRequestProtocol", name="range", metadata=b"m"),)
    values: dict[str, Any] = {
        "group_id": "g",
        "session_timeout": 10_000 * MS,
        "member_id": member_id,
        "protocol_type": "consumer",
        "protocols": protocols,
        **extra,
    }
    if version >= 1:
        values.setdefault("rebalance_timeout", 5_000 * MS)
    return request(JOIN, version, **values)


def test_registered_versions() -> None:
    load_all()
    served = supported()
    assert served[FIND_COORDINATOR] == (0, 2)
    assert served[JOIN] == (0, 5)
    assert served[SYNC] == (0, 3)
    assert served[HEARTBEAT] == (0, 3)
    assert served[LEAVE] == (0, 3)
    assert served[COMMIT] == (0, 7)
    assert served[FETCH] == (0, 5)
    assert served[DESCRIBE] == (0, 5)
    assert served[LIST] == (0, 4)


@pytest.mark.parametrize("version", [0, 1, 2])
async def test_find_coordinator_answers_this_node(broker: Broker, version: int) -> None:
    extra = {"key_type": 0} if version >= 1 else {}
    answer = await call(broker, FIND_COORDINATOR, version, request(10, version, key="g", **extra))
    assert answer.error_code == ErrorCode.none
    assert (answer.node_id, answer.host, answer.port) == (0, "broker.example", 9092)


async def test_find_coordinator_refuses_transaction_coordinators(broker: Broker) -> None:
    answer = await call(broker, FIND_COORDINATOR, 2, request(10, 2, key="tx", key_type=1))
    assert answer.error_code == ErrorCode.coordinator_not_available
    assert answer.node_id == -1


async def test_one_member_lifecycle_at_newest_versions(broker: Broker) -> None:
    first = await call(broker, JOIN, 5, join_request(5))
    assert first.error_code == ErrorCode.member_id_required
    member_id = first.member_id
    assert member_id.startswith("test-client-")

    joined = await call(broker, JOIN, 5, join_request(5, member_id))
    assert joined.error_code == ErrorCode.none
    assert joined.leader == member_id == joined.member_id
    assert joined.protocol_name == "range"
    assert [(m.member_id, m.metadata) for m in joined.members] == [(member_id, b"m")]
    generation = joined.generation_id

    assignment = entity(SYNC, 3, "SyncGroupRequestAssignment", member_id=member_id, assignment=b"a")
    synced = await call(
        broker,
        SYNC,
        3,
        request(
            SYNC,
            3,
            group_id="g",
            generation_id=generation,
            member_id=member_id,
            group_instance_id=None,
            assignments=(assignment,),
        ),
    )
    assert (synced.error_code, synced.assignment) == (ErrorCode.none, b"a")

    beat = await call(
        broker,
        HEARTBEAT,
        3,
        request(
            HEARTBEAT,
            3,
            group_id="g",
            generation_id=generation,
            member_id=member_id,
            group_instance_id=None,
        ),
    )
    assert beat.error_code == ErrorCode.none

    partition = entity(
        COMMIT,
        7,
        "OffsetCommitRequestPartition",
        partition_index=1,
        committed_offset=42,
        committed_leader_epoch=3,
        committed_metadata="md",
    )
    topic = entity(COMMIT, 7, "OffsetCommitRequestTopic", name="orders", partitions=(partition,))
    committed = await call(
        broker,
        COMMIT,
        7,
        request(
            COMMIT,
            7,
            group_id="g",
            generation_id_or_member_epoch=generation,
            member_id=member_id,
            group_instance_id=None,
            topics=(topic,),
        ),
    )
    assert [
        (t.name, [(p.partition_index, p.error_code) for p in t.partitions])
        for t in committed.topics
    ] == [("orders", [(1, ErrorCode.none)])]

    wanted = entity(FETCH, 5, "OffsetFetchRequestTopic", name="orders", partition_indexes=(0, 1))
    fetched = await call(broker, FETCH, 5, request(FETCH, 5, group_id="g", topics=(wanted,)))
    assert fetched.error_code == ErrorCode.none
    assert [
        (p.partition_index, p.committed_offset, p.committed_leader_epoch, p.metadata)
        for p in fetched.topics[0].partitions
    ] == [(0, -1, -1, ""), (1, 42, 3, "md")]

    described = await call(
        broker,
        DESCRIBE,
        5,
        request(DESCRIBE, 5, groups=("g", "nobody"), include_authorized_operations=False),
    )
    group, unknown = described.groups
    assert group.authorized_operations == -(2**31)
    assert (group.error_code, group.group_state, group.protocol_type, group.protocol_data) == (
        ErrorCode.none,
        "Stable",
        "consumer",
        "range",
    )
    assert [
        (m.member_id, m.client_id, m.client_host, m.member_metadata, m.member_assignment)
        for m in group.members
    ] == [(member_id, "test-client", "/127.0.0.1", b"m", b"a")]
    assert (unknown.group_id, unknown.group_state, unknown.members) == ("nobody", "Dead", ())

    listed = await call(broker, LIST, 4, request(LIST, 4, states_filter=()))
    assert [(g.group_id, g.protocol_type, g.group_state) for g in listed.groups] == [
        ("g", "consumer", "Stable")
    ]
    filtered = await call(broker, LIST, 4, request(LIST, 4, states_filter=("empty",)))
    assert filtered.groups == ()

    identity = entity(LEAVE, 3, "MemberIdentity", member_id=member_id, group_instance_id=None)
    ghost = entity(LEAVE, 3, "MemberIdentity", member_id="ghost", group_instance_id=None)
    left = await call(broker, LEAVE, 3, request(LEAVE, 3, group_id="g", members=(identity, ghost)))
    assert left.error_code == ErrorCode.none
    assert [(m.member_id, m.error_code) for m in left.members] == [
        (member_id, ErrorCode.none),
        ("ghost", ErrorCode.unknown_member_id),
    ]
    described = await call(broker, DESCRIBE, 0, request(DESCRIBE, 0, groups=("g",)))
    assert (described.groups[0].group_state, described.groups[0].members) == ("Empty", ())


async def test_oldest_versions_join_without_member_id_round_trip(broker: Broker) -> None:
    joined = await call(broker, JOIN, 0, join_request(0))
    assert joined.error_code == ErrorCode.none
    assert joined.member_id and joined.leader == joined.member_id
    description = await broker.groups.describe_group("g")
    assert description.generation == joined.generation_id

    assignment = entity(
        SYNC, 0, "SyncGroupRequestAssignment", member_id=joined.member_id, assignment=b"x"
    )
    synced = await call(
        broker,
        SYNC,
        0,
        request(
            SYNC,
            0,
            group_id="g",
            generation_id=joined.generation_id,
            member_id=joined.member_id,
            assignments=(assignment,),
        ),
    )
    assert synced.assignment == b"x"
    left = await call(broker, LEAVE, 0, request(LEAVE, 0, group_id="g", member_id=joined.member_id))
    assert left.error_code == ErrorCode.none
    again = await call(
        broker, LEAVE, 0, request(LEAVE, 0, group_id="g", member_id=joined.member_id)
    )
    assert again.error_code == ErrorCode.unknown_member_id


async def test_two_members_share_one_generation_and_only_the_leader_sees_members(
    broker: Broker,
) -> None:
    one, two = await asyncio.gather(
        call(broker, JOIN, 3, join_request(3)), call(broker, JOIN, 3, join_request(3))
    )
    assert one.generation_id == two.generation_id
    assert one.leader == two.leader
    leader, follower = (one, two) if one.member_id == one.leader else (two, one)
    assert sorted(m.member_id for m in leader.members) == sorted([one.member_id, two.member_id])
    assert follower.members == ()


async def test_static_member_joins_without_member_id_required(broker: Broker) -> None:
    joined = await call(broker, JOIN, 5, join_request(5, group_instance_id="instance-1"))
    assert joined.error_code == ErrorCode.none
    assert joined.members[0].group_instance_id == "instance-1"
    described = await call(
        broker,
        DESCRIBE,
        4,
        request(DESCRIBE, 4, groups=("g",), include_authorized_operations=True),
    )
    assert described.groups[0].members[0].group_instance_id == "instance-1"
    assert described.groups[0].authorized_operations == 0b1_0100_1000


async def test_coordinator_errors_become_error_codes(broker: Broker) -> None:
    bad_timeout = await call(broker, JOIN, 1, join_request(1, session_timeout=10 * MS))
    assert bad_timeout.error_code == ErrorCode.invalid_session_timeout
    assert bad_timeout.generation_id == -1
    unknown = await call(broker, JOIN, 2, join_request(2, "stranger"))
    assert (unknown.error_code, unknown.member_id) == (ErrorCode.unknown_member_id, "stranger")

    beat = await call(
        broker, HEARTBEAT, 0, request(HEARTBEAT, 0, group_id="g", generation_id=1, member_id="x")
    )
    assert beat.error_code == ErrorCode.unknown_member_id

    joined = await call(broker, JOIN, 3, join_request(3))
    stale = await call(
        broker,
        SYNC,
        1,
        request(
            SYNC,
            1,
            group_id="g",
            generation_id=joined.generation_id + 1,
            member_id=joined.member_id,
            assignments=(),
        ),
    )
    assert (stale.error_code, stale.assignment) == (ErrorCode.illegal_generation, b"")

    empty_id = await call(broker, FETCH, 3, request(FETCH, 3, group_id="", topics=None))
    assert empty_id.error_code == ErrorCode.invalid_group_id


async def test_standalone_commit_and_unknown_partitions(broker: Broker) -> None:
    partitions = tuple(
        entity(
            COMMIT,
            2,
            "OffsetCommitRequestPartition",
            partition_index=i,
            committed_offset=10 + i,
            committed_metadata=None,
        )
        for i in (0, 1, 2)
    )
    topics = (
        entity(COMMIT, 2, "OffsetCommitRequestTopic", name="orders", partitions=partitions),
        entity(COMMIT, 2, "OffsetCommitRequestTopic", name="missing", partitions=partitions[:1]),
    )
    committed = await call(
        broker,
        COMMIT,
        2,
        request(
            COMMIT,
            2,
            group_id="solo",
            generation_id_or_member_epoch=-1,
            member_id="",
            retention_time=-1 * MS,
            topics=topics,
        ),
    )
    assert [[p.error_code for p in t.partitions] for t in committed.topics] == [
        [ErrorCode.none, ErrorCode.none, ErrorCode.unknown_topic_or_partition],
        [ErrorCode.unknown_topic_or_partition],
    ]

    wanted = entity(FETCH, 1, "OffsetFetchRequestTopic", name="orders", partition_indexes=(1,))
    v1 = await call(broker, FETCH, 1, request(FETCH, 1, group_id="solo", topics=(wanted,)))
    assert [
        (p.partition_index, p.committed_offset, p.metadata) for p in v1.topics[0].partitions
    ] == [(1, 11, "")]
    every = await call(broker, FETCH, 2, request(FETCH, 2, group_id="solo", topics=None))
    assert [
        (t.name, [(p.partition_index, p.committed_offset) for p in t.partitions])
        for t in every.topics
    ] == [("orders", [(0, 10), (1, 11)])]

    listed = await call(broker, LIST, 0, request(LIST, 0))
    assert [(g.group_id, g.protocol_type) for g in listed.groups] == [("solo", "")]
    states = await call(broker, LIST, 4, request(LIST, 4, states_filter=("EMPTY", "bogus")))
    assert [(g.group_id, g.group_state) for g in states.groups] == [("solo", "Empty")]


async def test_commit_by_a_stranger_is_refused_on_every_partition(broker: Broker) -> None:
    await call(broker, JOIN, 3, join_request(3))
    partition = entity(
        COMMIT,
        5,
        "OffsetCommitRequestPartition",
        partition_index=0,
        committed_offset=5,
        committed_metadata="",
    )
    topic = entity(COMMIT, 5, "OffsetCommitRequestTopic", name="orders", partitions=(partition,))
    refused = await call(
        broker,
        COMMIT,
        5,
        request(
            COMMIT,
            5,
            group_id="g",
            generation_id_or_member_epoch=1,
            member_id="stranger",
            topics=(topic,),
        ),
    )
    assert refused.topics[0].partitions[0].error_code == ErrorCode.unknown_member_id
    assert await broker.groups.fetch_offsets("g") == {}


def test_build_keeps_the_fields_of_the_version_and_maps_error_codes() -> None:
    old = build(
        load_response_schema(HEARTBEAT, 0), error_code=ErrorCode.none, group_instance_id="i"
    )
    new = build(load_response_schema(HEARTBEAT, 3), error_code=ErrorCode.none)
    assert not hasattr(old, "throttle_time")
    assert new.throttle_time == datetime.timedelta(0)
    assert error_code(RebalanceInProgressError("rejoin")) == ErrorCode.rebalance_in_progress
    assert error_code(EventyardError("?")) == ErrorCode.unknown_server_error

    class Unmapped(EventyardError):
        code = 32_000

    assert error_code(Unmapped("?")) == ErrorCode.unknown_server_error
