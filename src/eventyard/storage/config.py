"""A partition log's settings: :class:`LogConfig` and its :class:`Durability` policy.

Both are frozen dataclasses checked when built, so a bad value fails where it was written
(a topic config, a CLI flag) with a :class:`~eventyard.errors.ConfigError`, never later
inside the log. Names and defaults follow Kafka's topic configs (``segment.bytes``,
``retention.ms``...) so the Kafka front can map them one to one; ``-1`` means unlimited
where Kafka says so.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from eventyard.errors import ConfigError

__all__ = ["CleanupPolicy", "Durability", "DurabilityMode", "LogConfig"]

DurabilityMode = Literal["always", "interval", "never"]
CleanupPolicy = Literal["delete", "compact", "compact,delete"]

_CLEANUP_POLICIES: tuple[str, ...] = ("delete", "compact", "compact,delete")
_MAX_SEGMENT_BYTES = (1 << 31) - 1
"""Index entries store positions as int32, as Kafka's do."""
_MIN_SEGMENT_BYTES = 1024
_DAY_MS = 24 * 60 * 60 * 1000


@dataclasses.dataclass(frozen=True, slots=True)
class Durability:
    """When appended batches are made durable (fsynced) before they are acknowledged.

    - ``always``: every acknowledged batch was fsynced (group commit: one fsync covers
      every batch appended while the previous one ran);
    - ``interval:MS``: a timer flushes every ``interval_ms``; a crash may lose that much;
    - ``never``: the OS writes back when it likes; a crash may lose what it held.

    :class:`~eventyard.storage.PartitionLog` never waits: its owner (the broker) applies
    the policy by calling ``flush()``.
    """

    mode: DurabilityMode
    interval_ms: int = 0

    def __post_init__(self) -> None:
        if self.mode == "interval":
            if self.interval_ms <= 0:
                raise ConfigError(
                    f"durability interval must be a positive number of milliseconds,"
                    f" not {self.interval_ms}"
                )
        elif self.mode in ("always", "never"):
            if self.interval_ms != 0:
                raise ConfigError(f"durability {self.mode!r} takes no interval")
        else:
            raise ConfigError(f"unknown durability mode {self.mode!r}")

    @classmethod
    def parse(cls, text: str) -> Durability:
        """Parse ``"always"``, ``"never"`` or ``"interval:MS"`` (MS a positive integer)."""
        value = text.strip().lower()
        if value in ("always", "never"):
            return cls(value)  # type: ignore[arg-type]
        name, sep, number = value.partition(":")
        if name == "interval" and sep:
            if not number.isdigit() or int(number) <= 0:
                raise ConfigError(
                    f"invalid durability {text!r}: the interval must be a positive integer"
                    " of milliseconds, e.g. 'interval:100'"
                )
            return cls("interval", int(number))
        raise ConfigError(
            f"invalid durability {text!r}: expected 'always', 'never' or 'interval:MS'"
        )

    def __str__(self) -> str:
        return f"interval:{self.interval_ms}" if self.mode == "interval" else self.mode


@dataclasses.dataclass(frozen=True, slots=True)
class LogConfig:
    """One partition log's settings (Kafka topic-config names, underscores for dots).

    - ``segment_bytes``: roll the active segment before it would exceed this size.
    - ``segment_ms``: roll a non-empty active segment this long after it was created (for
      one found at open, after its first batch's timestamp), so time retention can drop
      data of a quiet partition.
    - ``index_interval_bytes``: bytes of batches between two sparse index entries.
    - ``retention_ms`` / ``retention_bytes``: with the ``delete`` policy, closed segments
      whose newest record is older, or that take the log over the size, are dropped
      (``-1``: unlimited).
    - ``cleanup_policy``: ``delete``, ``compact`` or both.
    - ``delete_retention_ms``: how long compaction keeps a tombstone (null value).
    - ``durability``: see :class:`Durability`.
    """

    segment_bytes: int = 1 << 30
    segment_ms: int = 7 * _DAY_MS
    index_interval_bytes: int = 4096
    retention_ms: int = 7 * _DAY_MS
    retention_bytes: int = -1
    cleanup_policy: CleanupPolicy = "delete"
    delete_retention_ms: int = _DAY_MS
    durability: Durability = dataclasses.field(default_factory=lambda: Durability("always"))

    def __post_init__(self) -> None:
        if not _MIN_SEGMENT_BYTES <= self.segment_bytes <= _MAX_SEGMENT_BYTES:
            raise ConfigError(
                f"segment_bytes must be between {_MIN_SEGMENT_BYTES} and"
                f" {_MAX_SEGMENT_BYTES}, not {self.segment_bytes}"
            )
        if self.segment_ms <= 0:
            raise ConfigError(f"segment_ms must be positive, not {self.segment_ms}")
        if self.index_interval_bytes <= 0:
            raise ConfigError(
                f"index_interval_bytes must be positive, not {self.index_interval_bytes}"
            )
        for name in ("retention_ms", "retention_bytes"):
            value = getattr(self, name)
            if value < -1:
                raise ConfigError(f"{name} must be -1 (unlimited) or at least 0, not {value}")
        if self.delete_retention_ms < 0:
            raise ConfigError(
                f"delete_retention_ms must not be negative, not {self.delete_retention_ms}"
            )
        if self.cleanup_policy not in _CLEANUP_POLICIES:
            raise ConfigError(
                f"cleanup_policy must be one of {', '.join(_CLEANUP_POLICIES)},"
                f" not {self.cleanup_policy!r}"
            )
        if not isinstance(self.durability, Durability):
            raise ConfigError(f"durability must be a Durability, not {self.durability!r}")

    @property
    def deletes(self) -> bool:
        """Whether retention by age and size applies (``delete`` in the policy)."""
        return "delete" in self.cleanup_policy

    @property
    def compacts(self) -> bool:
        """Whether compaction by key applies (``compact`` in the policy)."""
        return "compact" in self.cleanup_policy
