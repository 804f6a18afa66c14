"""GroupMembership: the member side of the protocol, against a real coordinator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from eventyard.broker.groups import (
    GroupConfig,
    GroupCoordinator,
    GroupMembership,
    MembershipConfig,
)

FAST = MembershipConfig(session_timeout_ms=1_000, heartbeat_interval_ms=20)


@pytest.fixture
async def coordinator(tmp_path: Path) -> AsyncIterator[GroupCoordinator]:
    coordinator = await GroupCoordinator.open(
        tmp_path / "offsets", GroupConfig(initial_rebalance_delay_ms=30)
    )
    yield coordinator
    await coordinator.close()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


class Recorder:
    """Collects the callbacks one member receives."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[tuple[str, int], ...]]] = []
        self.changes = 0

    async def assigned(self, partitions: tuple[tuple[str, int], ...]) -> None:
        self.events.append(("assign", partitions))

    async def revoked(self, partitions: tuple[tuple[str, int], ...]) -> None:
        self.events.append(("revoke", partitions))

    def changed(self) -> None:
        self.changes += 1


async def test_members_split_partitions_and_follow_metadata_changes(
    coordinator: GroupCoordinator,
) -> None:
    counts = {"t": 4}
    recorders = [Recorder(), Recorder()]
    members = [
        GroupMembership(
            coordinator,
            "g",
            ["t", "missing"],
            partition_count=counts.get,
            on_assign=r.assigned,
            on_revoke=r.revoked,
            on_change=r.changed,
            config=FAST,
        )
        for r in recorders
    ]
    for m in members:
        m.start()

    def owned() -> list[set[tuple[str, int]]]:
        return [set(m.assignment) for m in members if m.stable]

    await until(lambda: len(owned()) == 2 and sorted(map(len, owned())) == [2, 2])
    assert set().union(*owned()) == {("t", p) for p in range(4)}

    counts["missing"] = 1
    counts["t"] = 6
    await until(
        lambda: (
            len(owned()) == 2
            and set().union(*owned())
            == {
                *(("t", p) for p in range(6)),
                ("missing", 0),
            }
        )
    )
    first = recorders[0].events
    assert first[0][0] == "assign"
    assert ("revoke", first[0][1]) in first, "partitions are revoked before a new assignment"
    assert recorders[0].changes >= 1

    await members[1].stop()
    await until(lambda: members[0].stable and len(members[0].assignment) == 7)
    await members[0].stop()
    assert (await coordinator.describe_group("g")).members == ()


async def test_membership_reports_a_failure(coordinator: GroupCoordinator) -> None:
    recorder = Recorder()
    member = GroupMembership(
        coordinator,
        "",
        ["t"],
        partition_count={"t": 1}.get,
        on_assign=recorder.assigned,
        on_revoke=recorder.revoked,
        on_change=recorder.changed,
        config=FAST,
    )
    member.start()
    assert await member.wait_assigned(2)
    assert member.error is not None
    assert member.error.code == 24
    await member.stop()
