"""Durable committed offsets: group commit, visibility after fsync, replay on open."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from eventyard.broker.groups import GroupConfig, GroupCoordinator, OffsetAndMetadata
from eventyard.errors import ConfigError
from tests.broker.countingfs import CountingFileSystem

CONFIG = GroupConfig(initial_rebalance_delay_ms=50)


async def test_commits_wait_for_fsync_and_share_it(tmp_path: Path) -> None:
    fs = CountingFileSystem()
    coordinator = await GroupCoordinator.open(tmp_path / "offsets", CONFIG, fs=fs)
    try:
        await coordinator.commit_offsets("g", -1, "", {("t", 0): OffsetAndMetadata(1)})
        fs.gate = threading.Event()
        fs.waiting.clear()
        first = asyncio.ensure_future(
            coordinator.commit_offsets("g", -1, "", {("t", 0): OffsetAndMetadata(2)})
        )
        assert await asyncio.to_thread(fs.waiting.wait, 5)
        before = fs.fsyncs
        others = [
            asyncio.ensure_future(
                coordinator.commit_offsets("g", -1, "", {("t", p): OffsetAndMetadata(10 + p)})
            )
            for p in range(1, 50)
        ]
        await asyncio.sleep(0.05)
        assert not first.done()
        assert not any(o.done() for o in others)
        offsets = await coordinator.fetch_offsets("g")
        assert {tp: o.offset for tp, o in offsets.items()} == {("t", 0): 1}
        fs.gate.set()
        await asyncio.gather(first, *others)
        assert fs.fsyncs - before < 10, "49 concurrent commits should share one flush"
        offsets = await coordinator.fetch_offsets("g")
        assert len(offsets) == 50
        assert offsets[("t", 0)].offset == 2
        assert offsets[("t", 49)].offset == 59
    finally:
        fs.gate = None
        await coordinator.close()


async def test_replay_keeps_the_latest_value_per_partition(tmp_path: Path) -> None:
    coordinator = await GroupCoordinator.open(tmp_path / "offsets", CONFIG)
    for round_ in range(20):
        await coordinator.commit_offsets(
            "g",
            -1,
            "",
            {("t", p): OffsetAndMetadata(round_ * 100 + p, f"r{round_}") for p in range(5)},
        )
    await coordinator.commit_offsets("other", -1, "", {("u", 0): OffsetAndMetadata(1)})
    before = await coordinator.fetch_offsets("g")
    await coordinator.close()
    reopened = await GroupCoordinator.open(tmp_path / "offsets", CONFIG)
    try:
        after = await reopened.fetch_offsets("g")
        assert after == before
        assert after[("t", 3)] == OffsetAndMetadata(
            1903, "r19", -1, before[("t", 3)].commit_timestamp_ms
        )
        assert (await reopened.fetch_offsets("other"))[("u", 0)].offset == 1
    finally:
        await reopened.close()


async def test_compaction_keeps_the_latest_offsets(tmp_path: Path) -> None:
    config = GroupConfig(offsets_segment_bytes=4096)
    coordinator = await GroupCoordinator.open(tmp_path / "offsets", config)
    for round_ in range(200):
        await coordinator.commit_offsets(
            "g", -1, "", {("t", p): OffsetAndMetadata(round_ * 10 + p) for p in range(3)}
        )
    await coordinator.commit_offsets("gone", -1, "", {("t", 0): OffsetAndMetadata(5)})
    await coordinator.delete_groups(["gone"])
    expected = await coordinator.fetch_offsets("g")
    reclaimed = await coordinator.compact_offsets()
    assert reclaimed > 0
    await coordinator.close()
    reopened = await GroupCoordinator.open(tmp_path / "offsets", config)
    try:
        assert await reopened.fetch_offsets("g") == expected
        assert await reopened.fetch_offsets("gone") == {}
        assert [g.group_id for g in await reopened.list_groups()] == ["g"]
    finally:
        await reopened.close()


async def test_offsets_of_groups_without_members_expire(tmp_path: Path) -> None:
    config = GroupConfig(offsets_retention_ms=60_000)
    coordinator = await GroupCoordinator.open(tmp_path / "offsets", config)
    try:
        await coordinator.commit_offsets("old", -1, "", {("t", 0): OffsetAndMetadata(1)})
        join = await coordinator.join_group(
            "busy",
            "",
            client_id="c",
            client_host="h",
            session_timeout_ms=10_000,
            rebalance_timeout_ms=10_000,
            protocol_type="consumer",
            protocols=[("range", b"")],
        )
        await coordinator.sync_group("busy", 1, join.member_id, assignments={})
        await coordinator.commit_offsets(
            "busy", 1, join.member_id, {("t", 0): OffsetAndMetadata(2)}
        )
        now = (await coordinator.fetch_offsets("old"))[("t", 0)].commit_timestamp_ms
        assert await coordinator.expire_offsets(now + 59_000) == []
        assert await coordinator.expire_offsets(now + 61_000) == ["old"]
        assert await coordinator.fetch_offsets("old") == {}
        assert (await coordinator.fetch_offsets("busy"))[("t", 0)].offset == 2
        await coordinator.leave_group("busy", join.member_id)
        await coordinator.delete_groups(["busy"])
        await coordinator.join_group(
            "forgotten",
            "",
            client_id="c",
            client_host="h",
            session_timeout_ms=10_000,
            rebalance_timeout_ms=10_000,
            protocol_type="consumer",
            protocols=[("range", b"")],
        )
        (member,) = (await coordinator.describe_group("forgotten")).members
        await coordinator.leave_group("forgotten", member.member_id)
        assert [g.group_id for g in await coordinator.list_groups()] == ["forgotten"]
        await coordinator.expire_offsets()
        assert await coordinator.list_groups() == []
    finally:
        await coordinator.close()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError):
        GroupConfig(initial_rebalance_delay_ms=-1)
    with pytest.raises(ConfigError):
        GroupConfig(min_session_timeout_ms=10, max_session_timeout_ms=5)
    with pytest.raises(ConfigError):
        GroupConfig(offsets_retention_ms=0)
