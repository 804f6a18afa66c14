"""Broker and topic configuration: frozen dataclasses, validated when built.

``TopicConfig`` carries a topic's overrides with Kafka's meaning and defaults, and converts
from and to Kafka's config names (``retention.ms``, ``cleanup.policy``, ``segment.bytes``,
...; ``eventyard.durability`` for the one setting Kafka does not have), so ``eventyard topics
create --config retention.ms=...`` and the Kafka front's CreateTopics speak the same language.
Unlimited retention is ``None`` here and ``-1`` in Kafka form. A topic without its own
durability (``None``) follows the broker's ``default_durability``, resolved each time the
topic's logs are opened, as Kafka resolves unset topic configs from the broker's.

Every invalid value raises :class:`~eventyard.errors.InvalidConfigError` (or
:class:`~eventyard.errors.InvalidPartitionsError` for a partition count) naming the setting
and the value, because these values come from users and from the network.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, cast

from eventyard.broker.groups.coordinator import GroupConfig
from eventyard.errors import ConfigError, InvalidConfigError, InvalidPartitionsError
from eventyard.storage import CleanupPolicy, Durability, FileSystem, LogConfig, OSFileSystem

__all__ = ["DEFAULT_DURABILITY", "BrokerConfig", "TopicConfig"]

DEFAULT_DURABILITY: Final = "interval:1000"
"""Flush dirty partitions every second unless a topic or the broker says otherwise."""

MAX_PARTITIONS: Final = 10_000
CLEANUP_POLICIES: Final = ("compact", "compact,delete", "delete")
_DAY_MS: Final = 86_400_000
_MIN_SEGMENT_BYTES: Final = 1024
_MAX_SEGMENT_BYTES: Final = (1 << 31) - 1


def _check_durability(setting: str, value: str) -> None:
    try:
        Durability.parse(value)
    except ConfigError as exc:
        raise InvalidConfigError(f"{setting}: {exc}") from exc


def _check_int(setting: str, value: int | None, minimum: int, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidConfigError(f"{setting} must be an integer >= {minimum}, got {value!r}")


def _normalize_policy(value: str) -> str:
    parts = sorted({part.strip() for part in value.split(",") if part.strip()})
    policy = ",".join(parts)
    if policy not in CLEANUP_POLICIES:
        raise InvalidConfigError(
            f"cleanup.policy must be delete, compact or compact,delete, got {value!r}"
        )
    return policy


@dataclass(frozen=True, slots=True)
class TopicConfig:
    """A topic's settings; defaults are Kafka's.

    ``retention_ms``/``retention_bytes``: ``None`` keeps data forever. ``durability``:
    ``"always"``, ``"interval:MS"``, ``"never"`` or ``None`` for the broker's default.
    """

    partitions: int = 1
    retention_ms: int | None = 7 * _DAY_MS
    retention_bytes: int | None = None
    cleanup_policy: str = "delete"
    delete_retention_ms: int = _DAY_MS
    durability: str | None = None
    segment_bytes: int = 1 << 30
    segment_ms: int = 7 * _DAY_MS

    def __post_init__(self) -> None:
        if (
            not isinstance(self.partitions, int)
            or isinstance(self.partitions, bool)
            or not 1 <= self.partitions <= MAX_PARTITIONS
        ):
            raise InvalidPartitionsError(
                f"partitions must be between 1 and {MAX_PARTITIONS}, got {self.partitions!r}"
            )
        _check_int("retention.ms", self.retention_ms, 0, optional=True)
        _check_int("retention.bytes", self.retention_bytes, 0, optional=True)
        _check_int("delete.retention.ms", self.delete_retention_ms, 0)
        _check_int("segment.bytes", self.segment_bytes, _MIN_SEGMENT_BYTES)
        if self.segment_bytes > _MAX_SEGMENT_BYTES:
            raise InvalidConfigError(
                f"segment.bytes must be at most {_MAX_SEGMENT_BYTES}, got {self.segment_bytes}"
            )
        _check_int("segment.ms", self.segment_ms, 1)
        if not isinstance(self.cleanup_policy, str):
            raise InvalidConfigError(
                f"cleanup.policy must be a string, got {self.cleanup_policy!r}"
            )
        object.__setattr__(self, "cleanup_policy", _normalize_policy(self.cleanup_policy))
        if self.durability is not None:
            _check_durability("eventyard.durability", self.durability)

    @classmethod
    def from_kafka(
        cls, configs: Mapping[str, str | int | None], *, partitions: int = 1
    ) -> TopicConfig:
        """Build a config from Kafka config names; unknown names and bad values are refused."""
        changes: dict[str, Any] = {"partitions": partitions}
        for name, raw in configs.items():
            spec = _KAFKA_NAMES.get(name)
            if spec is None:
                known = ", ".join(sorted(_KAFKA_NAMES))
                raise InvalidConfigError(f"unknown topic config {name!r} (known: {known})")
            attribute, kind = spec
            changes[attribute] = _parse_value(name, kind, raw)
        return cls(**changes)

    def to_kafka(self) -> dict[str, str]:
        """Return the settings under Kafka's names (unlimited as ``-1``), for describe output."""
        result: dict[str, str] = {}
        for name, (attribute, kind) in sorted(_KAFKA_NAMES.items()):
            value = getattr(self, attribute)
            if value is None:
                if kind == "limit":
                    result[name] = "-1"
                continue
            result[name] = str(value)
        return result

    def with_durability(self, default: str) -> TopicConfig:
        """Return this config with an unset durability resolved to ``default``."""
        if self.durability is not None:
            return self
        return dataclasses.replace(self, durability=default)

    def to_log_config(self, default_durability: str = DEFAULT_DURABILITY) -> LogConfig:
        """Return the storage settings of each of this topic's partition logs."""
        durability = self.durability if self.durability is not None else default_durability
        return LogConfig(
            segment_bytes=self.segment_bytes,
            segment_ms=self.segment_ms,
            retention_ms=-1 if self.retention_ms is None else self.retention_ms,
            retention_bytes=-1 if self.retention_bytes is None else self.retention_bytes,
            cleanup_policy=cast(CleanupPolicy, self.cleanup_policy),
            delete_retention_ms=self.delete_retention_ms,
            durability=Durability.parse(durability),
        )


_KAFKA_NAMES: Final[dict[str, tuple[str, str]]] = {
    "cleanup.policy": ("cleanup_policy", "str"),
    "delete.retention.ms": ("delete_retention_ms", "int"),
    "eventyard.durability": ("durability", "str"),
    "retention.bytes": ("retention_bytes", "limit"),
    "retention.ms": ("retention_ms", "limit"),
    "segment.bytes": ("segment_bytes", "int"),
    "segment.ms": ("segment_ms", "int"),
}
"""Kafka name -> (attribute, kind); ``limit`` is an int where ``-1`` means unlimited."""


def _parse_value(name: str, kind: str, raw: str | int | None) -> str | int | None:
    if kind == "str":
        if not isinstance(raw, str):
            raise InvalidConfigError(f"{name} must be a string, got {raw!r}")
        return raw.strip()
    if isinstance(raw, bool) or raw is None:
        raise InvalidConfigError(f"{name} must be an integer, got {raw!r}")
    try:
        value = int(raw)
    except ValueError:
        raise InvalidConfigError(f"{name} must be an integer, got {raw!r}") from None
    if kind == "limit" and value == -1:
        return None
    return value


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Settings of one embedded broker.

    ``fs`` is the file system every log and metadata file goes through (tests inject a
    counting or faulty one). ``max_message_bytes`` bounds one record batch, as Kafka's
    ``message.max.bytes``. ``retention_check_interval_ms`` paces the background retention and
    compaction pass, which also forgets idempotent producers silent for
    ``producer_id_expiration_ms`` (Kafka's ``producer.id.expiration.ms``). ``groups`` is
    handed to the group coordinator unchanged (its timing knobs, e.g. the initial rebalance
    delay).
    """

    fs: FileSystem = field(default_factory=OSFileSystem)
    auto_create_topics: bool = True
    default_partitions: int = 1
    default_durability: str = DEFAULT_DURABILITY
    max_message_bytes: int = 1_048_588
    retention_check_interval_ms: int = 300_000
    producer_id_expiration_ms: int = _DAY_MS
    groups: GroupConfig = field(default_factory=GroupConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.default_partitions <= MAX_PARTITIONS:
            raise InvalidPartitionsError(
                f"default_partitions must be between 1 and {MAX_PARTITIONS}, "
                f"got {self.default_partitions!r}"
            )
        _check_durability("default_durability", self.default_durability)
        _check_int("max_message_bytes", self.max_message_bytes, 64)
        _check_int("retention_check_interval_ms", self.retention_check_interval_ms, 1)
        _check_int("producer_id_expiration_ms", self.producer_id_expiration_ms, 1)
