"""The group coordinator's state machine, driven as Kafka clients drive it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from eventyard.broker.groups import (
    GroupConfig,
    GroupCoordinator,
    GroupState,
    JoinResult,
    MemberIdRequired,
    OffsetAndMetadata,
)
from eventyard.errors import (
    CoordinatorNotAvailableError,
    GroupIdNotFoundError,
    IllegalGenerationError,
    InconsistentGroupProtocolError,
    InvalidGroupIdError,
    InvalidSessionTimeoutError,
    NonEmptyGroupError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)

CONFIG = GroupConfig(initial_rebalance_delay_ms=50, min_session_timeout_ms=10)


@pytest.fixture
async def coordinator(tmp_path: Path) -> AsyncIterator[GroupCoordinator]:
    coordinator = await GroupCoordinator.open(tmp_path / "offsets", CONFIG)
    yield coordinator
    await coordinator.close()


async def join(
    coordinator: GroupCoordinator, member_id: str = "", group: str = "g", **overrides: Any
) -> JoinResult:
    arguments: dict[str, Any] = {
        "client_id": "client",
        "client_host": "host",
        "session_timeout_ms": 5_000,
        "rebalance_timeout_ms": 5_000,
        "protocol_type": "consumer",
        "protocols": [("range", b"meta-" + member_id.encode())],
    }
    arguments.update(overrides)
    return await coordinator.join_group(group, member_id, **arguments)


async def stable_group(coordinator: GroupCoordinator, size: int) -> list[JoinResult]:
    """Join ``size`` members at once and complete the rebalance; return their joins."""
    joins = await asyncio.gather(*(join(coordinator, client_id=f"c{i}") for i in range(size)))
    leader = next(j for j in joins if j.is_leader)
    assignments = {j.member_id: f"to-{j.member_id}".encode() for j in joins}
    await asyncio.gather(
        *(
            coordinator.sync_group(
                "g",
                j.generation,
                j.member_id,
                assignments=assignments if j is leader else None,
            )
            for j in joins
        )
    )
    return list(joins)


async def test_single_member_becomes_leader_and_stable(coordinator: GroupCoordinator) -> None:
    result = await join(coordinator)
    assert result.generation == 1
    assert result.is_leader
    assert result.protocol == "range"
    assert [m.member_id for m in result.members] == [result.member_id]
    assert result.member_id.startswith("client-")
    sync = await coordinator.sync_group(
        "g", 1, result.member_id, assignments={result.member_id: b"all"}
    )
    assert sync.assignment == b"all"
    await coordinator.heartbeat("g", 1, result.member_id)
    description = await coordinator.describe_group("g")
    assert description.state is GroupState.STABLE
    assert description.members[0].assignment == b"all"
    assert description.members[0].metadata == b"meta-"


async def test_members_starting_together_share_a_generation(
    coordinator: GroupCoordinator,
) -> None:
    joins = await asyncio.gather(*(join(coordinator, client_id=f"c{i}") for i in range(3)))
    assert {j.generation for j in joins} == {1}
    assert len({j.leader for j in joins}) == 1
    leaders = [j for j in joins if j.is_leader]
    assert len(leaders) == 1
    assert {m.member_id for m in leaders[0].members} == {j.member_id for j in joins}
    assert all(j.members == () for j in joins if not j.is_leader)


async def test_followers_wait_for_the_leaders_assignments(coordinator: GroupCoordinator) -> None:
    joins = await asyncio.gather(join(coordinator), join(coordinator))
    leader = next(j for j in joins if j.is_leader)
    follower = next(j for j in joins if not j.is_leader)
    waiting = asyncio.ensure_future(coordinator.sync_group("g", 1, follower.member_id))
    await asyncio.sleep(0.02)
    assert not waiting.done()
    assert (await coordinator.describe_group("g")).state is GroupState.COMPLETING_REBALANCE
    mine = await coordinator.sync_group(
        "g",
        1,
        leader.member_id,
        assignments={leader.member_id: b"L", follower.member_id: b"F"},
    )
    assert mine.assignment == b"L"
    assert (await waiting).assignment == b"F"


async def test_a_new_member_triggers_a_rebalance(coordinator: GroupCoordinator) -> None:
    (first,) = await stable_group(coordinator, 1)
    newcomer = asyncio.ensure_future(join(coordinator, client_id="late"))
    await asyncio.sleep(0.02)
    with pytest.raises(RebalanceInProgressError):
        await coordinator.heartbeat("g", 1, first.member_id)
    assert not newcomer.done()
    rejoined = await join(coordinator, first.member_id)
    late = await newcomer
    assert rejoined.generation == late.generation == 2
    assert rejoined.is_leader  # the previous leader keeps the role
    assert {m.member_id for m in rejoined.members} == {first.member_id, late.member_id}


async def test_expired_session_removes_the_member(coordinator: GroupCoordinator) -> None:
    joins = await asyncio.gather(
        join(coordinator, session_timeout_ms=100), join(coordinator, session_timeout_ms=5_000)
    )
    for j in joins:
        await coordinator.sync_group("g", 1, j.member_id, assignments={})
    quiet, alive = joins
    await asyncio.sleep(0.25)
    with pytest.raises(RebalanceInProgressError):
        await coordinator.heartbeat("g", 1, alive.member_id)
    again = await join(coordinator, alive.member_id)
    assert again.generation == 2
    assert [m.member_id for m in again.members] == [alive.member_id]
    with pytest.raises(UnknownMemberIdError):
        await coordinator.heartbeat("g", 2, quiet.member_id)


async def test_rebalance_timeout_expels_members_that_do_not_rejoin(
    coordinator: GroupCoordinator,
) -> None:
    timeouts = {"rebalance_timeout_ms": 300, "session_timeout_ms": 100}
    joins = await asyncio.gather(join(coordinator, **timeouts), join(coordinator, **timeouts))
    for j in joins:
        await coordinator.sync_group("g", 1, j.member_id, assignments={})
    leader = next(j for j in joins if j.is_leader)
    laggard = next(j for j in joins if not j.is_leader)

    async def heartbeat_without_rejoining() -> None:
        while True:
            with contextlib.suppress(RebalanceInProgressError):
                await coordinator.heartbeat("g", 1, laggard.member_id)
            await asyncio.sleep(0.03)

    alive = asyncio.ensure_future(heartbeat_without_rejoining())
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await asyncio.wait_for(join(coordinator, leader.member_id, **timeouts), 2)
    assert loop.time() - started >= 0.25
    assert result.generation == 2
    assert [m.member_id for m in result.members] == [leader.member_id]
    with pytest.raises(UnknownMemberIdError):
        await alive


async def test_generation_and_member_checks(coordinator: GroupCoordinator) -> None:
    (member,) = await stable_group(coordinator, 1)
    with pytest.raises(IllegalGenerationError):
        await coordinator.heartbeat("g", 7, member.member_id)
    with pytest.raises(IllegalGenerationError):
        await coordinator.sync_group("g", 0, member.member_id)
    with pytest.raises(IllegalGenerationError):
        await coordinator.commit_offsets("g", 3, member.member_id, {("t", 0): OffsetAndMetadata(1)})
    with pytest.raises(UnknownMemberIdError):
        await coordinator.heartbeat("g", 1, "nobody")
    with pytest.raises(UnknownMemberIdError):
        await coordinator.heartbeat("other", 1, member.member_id)
    with pytest.raises(UnknownMemberIdError):
        await join(coordinator, "nobody")


async def test_sync_during_rebalance_says_rejoin(coordinator: GroupCoordinator) -> None:
    (first,) = await stable_group(coordinator, 1)
    newcomer = asyncio.ensure_future(join(coordinator))
    await asyncio.sleep(0.02)
    with pytest.raises(RebalanceInProgressError):
        await coordinator.sync_group("g", 1, first.member_id)
    await join(coordinator, first.member_id)
    await newcomer


async def test_leaving_rebalances_and_the_last_leaves_it_empty(
    coordinator: GroupCoordinator,
) -> None:
    first, second = await stable_group(coordinator, 2)
    await coordinator.leave_group("g", second.member_id)
    assert (await coordinator.describe_group("g")).state is GroupState.PREPARING_REBALANCE
    again = await join(coordinator, first.member_id)
    assert again.generation == 2
    assert [m.member_id for m in again.members] == [first.member_id]
    await coordinator.leave_group("g", first.member_id)
    description = await coordinator.describe_group("g")
    assert description.state is GroupState.EMPTY
    assert description.members == ()
    with pytest.raises(UnknownMemberIdError):
        await coordinator.leave_group("g", first.member_id)


async def test_protocol_checks(coordinator: GroupCoordinator) -> None:
    await stable_group(coordinator, 1)
    with pytest.raises(InconsistentGroupProtocolError):
        await join(coordinator, protocol_type="connect")
    with pytest.raises(InconsistentGroupProtocolError):
        await join(coordinator, protocols=[("sticky", b"")])
    with pytest.raises(InconsistentGroupProtocolError):
        await join(coordinator, group="fresh", protocols=[])
    with pytest.raises(InvalidSessionTimeoutError):
        await join(coordinator, session_timeout_ms=1)
    with pytest.raises(InvalidGroupIdError):
        await join(coordinator, group="")


async def test_the_protocol_most_members_prefer_wins(coordinator: GroupCoordinator) -> None:
    both = [("roundrobin", b"r"), ("range", b"g")]
    joins = await asyncio.gather(
        join(coordinator, protocols=[("range", b"g"), ("roundrobin", b"r")]),
        join(coordinator, protocols=both),
        join(coordinator, protocols=both),
    )
    assert {j.protocol for j in joins} == {"roundrobin"}
    leader = next(j for j in joins if j.is_leader)
    assert {m.metadata for m in leader.members} == {b"r"}


async def test_known_member_id_required(coordinator: GroupCoordinator) -> None:
    with pytest.raises(MemberIdRequired) as caught:
        await join(coordinator, require_known_member_id=True)
    member_id = caught.value.member_id
    assert caught.value.code == 79
    result = await join(coordinator, member_id)
    assert result.member_id == member_id
    assert result.generation == 1


async def test_static_member_restart_keeps_the_generation(coordinator: GroupCoordinator) -> None:
    first = await join(coordinator, group_instance_id="pod-1")
    await coordinator.sync_group("g", 1, first.member_id, assignments={first.member_id: b"A"})
    restarted = await join(coordinator, group_instance_id="pod-1")
    assert restarted.member_id != first.member_id
    assert restarted.generation == 1
    sync = await coordinator.sync_group("g", 1, restarted.member_id)
    assert sync.assignment == b"A"
    with pytest.raises(UnknownMemberIdError):
        await coordinator.heartbeat("g", 1, first.member_id)


async def test_member_commits_follow_the_generation(coordinator: GroupCoordinator) -> None:
    joins = await asyncio.gather(join(coordinator), join(coordinator))
    follower = next(j for j in joins if not j.is_leader)
    with pytest.raises(RebalanceInProgressError):
        await coordinator.commit_offsets(
            "g", 1, follower.member_id, {("t", 0): OffsetAndMetadata(5)}
        )
    leader = next(j for j in joins if j.is_leader)
    await coordinator.sync_group("g", 1, leader.member_id, assignments={})
    await coordinator.commit_offsets(
        "g", 1, follower.member_id, {("t", 0): OffsetAndMetadata(5, "meta")}
    )
    offsets = await coordinator.fetch_offsets("g")
    assert offsets[("t", 0)].offset == 5
    assert offsets[("t", 0)].metadata == "meta"
    assert offsets[("t", 0)].commit_timestamp_ms > 0
    with pytest.raises(UnknownMemberIdError):
        await coordinator.commit_offsets("g", -1, "", {("t", 0): OffsetAndMetadata(9)})


async def test_standalone_commit_and_reset_need_an_empty_group(
    coordinator: GroupCoordinator,
) -> None:
    await coordinator.commit_offsets("solo", -1, "", {("t", 0): OffsetAndMetadata(3)})
    await coordinator.reset_offsets("solo", {("t", 1): OffsetAndMetadata(4)})
    offsets = await coordinator.fetch_offsets("solo")
    assert {tp: o.offset for tp, o in offsets.items()} == {("t", 0): 3, ("t", 1): 4}
    assert await coordinator.fetch_offsets("solo", [("t", 1), ("t", 9)]) == {
        ("t", 1): offsets[("t", 1)]
    }
    (member,) = await stable_group(coordinator, 1)
    with pytest.raises(NonEmptyGroupError):
        await coordinator.reset_offsets("g", {("t", 0): OffsetAndMetadata(0)})
    await coordinator.leave_group("g", member.member_id)
    await coordinator.reset_offsets("g", {("t", 0): OffsetAndMetadata(0)})
    assert (await coordinator.fetch_offsets("g"))[("t", 0)].offset == 0


async def test_offsets_survive_reopen(tmp_path: Path) -> None:
    first = await GroupCoordinator.open(tmp_path / "offsets", CONFIG)
    await first.commit_offsets("a", -1, "", {("t", 0): OffsetAndMetadata(10, "x")})
    await first.commit_offsets("a", -1, "", {("t", 0): OffsetAndMetadata(12)})
    await first.commit_offsets("b", -1, "", {("t", 1): OffsetAndMetadata(7)})
    await first.delete_groups(["b"])
    await first.close()
    second = await GroupCoordinator.open(tmp_path / "offsets", CONFIG)
    try:
        offsets = await second.fetch_offsets("a")
        assert {tp: (o.offset, o.metadata) for tp, o in offsets.items()} == {("t", 0): (12, "")}
        assert await second.fetch_offsets("b") == {}
        assert [g.group_id for g in await second.list_groups()] == ["a"]
        assert (await second.describe_group("a")).state is GroupState.EMPTY
    finally:
        await second.close()


async def test_list_describe_and_delete(coordinator: GroupCoordinator) -> None:
    await stable_group(coordinator, 2)
    await coordinator.commit_offsets("idle", -1, "", {("t", 0): OffsetAndMetadata(1)})
    listing = await coordinator.list_groups()
    assert [(g.group_id, g.protocol_type, g.state) for g in listing] == [
        ("g", "consumer", GroupState.STABLE),
        ("idle", "", GroupState.EMPTY),
    ]
    stable = await coordinator.list_groups(states=[GroupState.STABLE])
    assert [g.group_id for g in stable] == ["g"]
    assert (await coordinator.describe_group("missing")).state is GroupState.DEAD
    described = await coordinator.describe_group("g")
    assert (described.protocol, described.generation, len(described.members)) == ("range", 1, 2)
    outcomes = await coordinator.delete_groups(["g", "idle", "missing", ""])
    assert isinstance(outcomes["g"], NonEmptyGroupError)
    assert outcomes["idle"] is None
    assert isinstance(outcomes["missing"], GroupIdNotFoundError)
    assert isinstance(outcomes[""], InvalidGroupIdError)
    assert await coordinator.fetch_offsets("idle") == {}


async def test_close_fails_waiting_members(tmp_path: Path) -> None:
    coordinator = await GroupCoordinator.open(tmp_path / "offsets", CONFIG)
    first = await join(coordinator)
    waiting = asyncio.ensure_future(join(coordinator))
    await asyncio.sleep(0.02)
    assert first.generation == 1
    await coordinator.close()
    with pytest.raises(CoordinatorNotAvailableError):
        await waiting
    with pytest.raises(CoordinatorNotAvailableError):
        await coordinator.heartbeat("g", 1, first.member_id)
