"""Consumer lag: how far each of a group's partitions trails its log end.

Lag needs the log end offsets, which the broker owns; the broker sits above this package, so
callers inject a function instead of this module importing upward::

    lags = await group_lag(broker.groups, "billing", lambda t, p: broker.list_offset(t, p, -1))

The partitions reported are those with a committed offset plus those assigned to current
members (decoded from the consumer protocol), so a member that has not committed yet shows up
with ``committed=None``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from eventyard.broker.groups.coordinator import GroupCoordinator
from eventyard.broker.groups.protocol import CONSUMER_PROTOCOL_TYPE, decode_assignment
from eventyard.errors import InvalidRequestError, UnknownTopicError

__all__ = ["LogEndOffset", "PartitionLag", "group_lag"]

LogEndOffset = Callable[[str, int], Awaitable[int | None]]
"""``(topic, partition) -> log end offset`` (the broker's ``list_offset(t, p, -1)``)."""


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition's committed offset, log end offset and the difference.

    ``lag`` is ``None`` when nothing is committed (the consumer's reset policy decides where
    it starts). ``member_id`` is the member the partition is assigned to, or ``""``.
    """

    topic: str
    partition: int
    committed: int | None
    log_end_offset: int
    lag: int | None
    member_id: str


async def group_lag(
    coordinator: GroupCoordinator, group_id: str, log_end_offset: LogEndOffset
) -> list[PartitionLag]:
    """Lag of every partition ``group_id`` committed to or is assigned, sorted.

    Partitions of deleted topics (``UnknownTopicError`` from ``log_end_offset``) are left out.
    """
    committed = await coordinator.fetch_offsets(group_id)
    owners: dict[tuple[str, int], str] = {}
    description = await coordinator.describe_group(group_id)
    if description.protocol_type == CONSUMER_PROTOCOL_TYPE:
        for member in description.members:
            try:
                assignment = decode_assignment(member.assignment)
            except InvalidRequestError:
                continue
            for topic, partitions in assignment.partitions:
                for partition in partitions:
                    owners[(topic, partition)] = member.member_id
    keys = sorted(set(committed) | set(owners))

    async def end_of(key: tuple[str, int]) -> int | None:
        try:
            return await log_end_offset(*key)
        except UnknownTopicError:
            return None

    ends = await asyncio.gather(*(end_of(key) for key in keys))
    lags = []
    for (topic, partition), end in zip(keys, ends, strict=True):
        if end is None:
            continue
        offset = committed[(topic, partition)].offset if (topic, partition) in committed else None
        lag = None if offset is None else max(end - offset, 0)
        lags.append(
            PartitionLag(topic, partition, offset, end, lag, owners.get((topic, partition), ""))
        )
    return lags
