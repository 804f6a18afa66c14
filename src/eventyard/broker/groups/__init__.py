"""Consumer groups: Kafka's group coordinator, durable offsets, assignors and lag.

- :class:`GroupCoordinator` (``broker.groups``): JoinGroup, SyncGroup, Heartbeat,
  LeaveGroup, OffsetCommit/Fetch, List/Describe/DeleteGroups with Kafka's semantics;
- :class:`OffsetAndMetadata`: a committed position, durable in a compacted log;
- :mod:`~eventyard.broker.groups.protocol`: the consumer-protocol bytes members exchange;
- :mod:`~eventyard.broker.groups.assignors`: Kafka's range and round-robin assignors;
- :func:`group_lag`: committed offset, log end and lag per partition;
- :class:`GroupMembership`: the member side (join, sync, heartbeat) for in-process consumers.
"""

from eventyard.broker.groups.assignors import (
    ASSIGNORS,
    Assignor,
    AssignorMember,
    RangeAssignor,
    RoundRobinAssignor,
    get_assignor,
)
from eventyard.broker.groups.coordinator import GroupConfig, GroupCoordinator, MemberIdRequired
from eventyard.broker.groups.group import GroupDescription, GroupListing, GroupState
from eventyard.broker.groups.lag import LogEndOffset, PartitionLag, group_lag
from eventyard.broker.groups.member import JoinedMember, JoinResult, MemberDescription, SyncResult
from eventyard.broker.groups.membership import GroupMembership, MembershipConfig
from eventyard.broker.groups.offsets import OffsetAndMetadata, OffsetTable
from eventyard.broker.groups.protocol import (
    CONSUMER_PROTOCOL_TYPE,
    Assignment,
    Subscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)

__all__ = [
    "ASSIGNORS",
    "CONSUMER_PROTOCOL_TYPE",
    "Assignment",
    "Assignor",
    "AssignorMember",
    "GroupConfig",
    "GroupCoordinator",
    "GroupDescription",
    "GroupListing",
    "GroupMembership",
    "GroupState",
    "JoinResult",
    "JoinedMember",
    "LogEndOffset",
    "MemberDescription",
    "MemberIdRequired",
    "MembershipConfig",
    "OffsetAndMetadata",
    "OffsetTable",
    "PartitionLag",
    "RangeAssignor",
    "RoundRobinAssignor",
    "Subscription",
    "SyncResult",
    "decode_assignment",
    "decode_subscription",
    "encode_assignment",
    "encode_subscription",
    "get_assignor",
    "group_lag",
]
