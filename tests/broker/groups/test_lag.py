"""Lag per partition: committed offsets and current assignments against log ends."""

from __future__ import annotations

from pathlib import Path

from eventyard.broker.groups import (
    Assignment,
    GroupConfig,
    GroupCoordinator,
    OffsetAndMetadata,
    PartitionLag,
    Subscription,
    encode_assignment,
    encode_subscription,
    group_lag,
)
from eventyard.errors import UnknownTopicError

ENDS = {("orders", 0): 100, ("orders", 1): 40, ("orders", 2): 7}


async def log_end(topic: str, partition: int) -> int:
    try:
        return ENDS[(topic, partition)]
    except KeyError:
        raise UnknownTopicError(topic) from None


async def test_lag_of_committed_and_assigned_partitions(tmp_path: Path) -> None:
    coordinator = await GroupCoordinator.open(
        tmp_path / "offsets", GroupConfig(initial_rebalance_delay_ms=10)
    )
    try:
        await coordinator.commit_offsets(
            "g",
            -1,
            "",
            {
                ("orders", 0): OffsetAndMetadata(90),
                ("orders", 1): OffsetAndMetadata(40),
                ("gone", 0): OffsetAndMetadata(3),
            },
        )
        join = await coordinator.join_group(
            "g",
            "",
            client_id="c",
            client_host="h",
            session_timeout_ms=10_000,
            rebalance_timeout_ms=10_000,
            protocol_type="consumer",
            protocols=[("range", encode_subscription(Subscription(("orders",))))],
        )
        assignment = encode_assignment(Assignment((("orders", (0, 1, 2)),)))
        await coordinator.sync_group(
            "g", join.generation, join.member_id, assignments={join.member_id: assignment}
        )
        lags = await group_lag(coordinator, "g", log_end)
        assert lags == [
            PartitionLag("orders", 0, 90, 100, 10, join.member_id),
            PartitionLag("orders", 1, 40, 40, 0, join.member_id),
            PartitionLag("orders", 2, None, 7, None, join.member_id),
        ]
        assert await group_lag(coordinator, "nobody", log_end) == []
    finally:
        await coordinator.close()
