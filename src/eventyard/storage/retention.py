"""Retention by age and by size: which of the oldest closed segments go.

Kafka's rules, applied to whole closed segments, oldest first, stopping at the first that
stays (so the log never gets a hole):

- by age: a segment goes when its newest record is more than ``retention_ms`` older than
  now (its newest, not its oldest: no record goes before it is past retention);
- by size: a segment goes while the log without it still holds at least
  ``retention_bytes``.

``-1`` disables either rule. The active segment and segments not yet durable are never
candidates: :class:`~eventyard.storage.log.PartitionLog` passes only those below its
recovery point.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventyard.storage.config import LogConfig
from eventyard.storage.segment import Segment

__all__ = ["expired_count"]


def expired_count(
    candidates: Sequence[Segment], total_bytes: int, config: LogConfig, now_ms: int
) -> int:
    """How many of the oldest ``candidates`` retention deletes, given the log's size."""
    count = 0
    for segment in candidates:
        too_old = config.retention_ms >= 0 and now_ms - segment.max_timestamp > config.retention_ms
        too_big = (
            config.retention_bytes >= 0 and total_bytes - segment.size >= config.retention_bytes
        )
        if not (too_old or too_big):
            break
        count += 1
        total_bytes -= segment.size
    return count
