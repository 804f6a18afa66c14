"""Topic and broker configs: defaults, Kafka names both ways, validation messages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventyard.broker.config import DEFAULT_DURABILITY, BrokerConfig, TopicConfig
from eventyard.errors import InvalidConfigError, InvalidPartitionsError
from eventyard.storage import Durability


def test_defaults_are_kafkas() -> None:
    config = TopicConfig()
    assert config.to_kafka() == {
        "cleanup.policy": "delete",
        "delete.retention.ms": "86400000",
        "retention.bytes": "-1",
        "retention.ms": "604800000",
        "segment.bytes": "1073741824",
        "segment.ms": "604800000",
    }


def test_kafka_names_round_trip() -> None:
    config = TopicConfig.from_kafka(
        {
            "retention.ms": "-1",
            "retention.bytes": "1048576",
            "cleanup.policy": "delete, compact",
            "segment.bytes": 4096,
            "eventyard.durability": "always",
        },
        partitions=3,
    )
    assert config.partitions == 3
    assert config.retention_ms is None
    assert config.retention_bytes == 1048576
    assert config.cleanup_policy == "compact,delete"
    assert config.durability == "always"
    assert TopicConfig.from_kafka(config.to_kafka(), partitions=3) == config


@pytest.mark.parametrize(
    ("configs", "message"),
    [
        ({"retention.ms": "soon"}, "retention.ms must be an integer, got 'soon'"),
        ({"retention.ms": "-5"}, "retention.ms must be an integer >= 0"),
        ({"segment.bytes": "10"}, "segment.bytes must be an integer >= 1024"),
        ({"cleanup.policy": "shred"}, "cleanup.policy must be delete, compact"),
        ({"eventyard.durability": "sometimes"}, "eventyard.durability"),
        ({"max.compaction.lag.ms": "1"}, "unknown topic config 'max.compaction.lag.ms'"),
    ],
)
def test_bad_values_are_refused_with_the_setting_named(
    configs: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidConfigError, match=message):
        TopicConfig.from_kafka(configs)


@pytest.mark.parametrize("partitions", [0, -1, 10_001])
def test_partition_counts_are_bounded(partitions: int) -> None:
    with pytest.raises(InvalidPartitionsError, match="partitions must be between 1 and"):
        TopicConfig(partitions=partitions)


@given(
    partitions=st.integers(1, 10_000),
    retention_ms=st.none() | st.integers(0, 2**40),
    retention_bytes=st.none() | st.integers(0, 2**50),
    policy=st.sampled_from(["delete", "compact", "compact,delete", "delete,compact"]),
    durability=st.none()
    | st.sampled_from(["always", "never"])
    | st.integers(1, 10**6).map(lambda ms: f"interval:{ms}"),
    segment_bytes=st.integers(1024, 2**31 - 1),
)
def test_every_valid_config_survives_kafka_names(
    partitions: int,
    retention_ms: int | None,
    retention_bytes: int | None,
    policy: str,
    durability: str | None,
    segment_bytes: int,
) -> None:
    config = TopicConfig(
        partitions=partitions,
        retention_ms=retention_ms,
        retention_bytes=retention_bytes,
        cleanup_policy=policy,
        durability=durability,
        segment_bytes=segment_bytes,
    )
    assert TopicConfig.from_kafka(config.to_kafka(), partitions=partitions) == config
    log = config.to_log_config()
    assert log.retention_ms == (-1 if retention_ms is None else retention_ms)
    assert log.cleanup_policy == config.cleanup_policy


def test_log_config_takes_the_broker_default_durability_when_unset() -> None:
    assert TopicConfig().to_log_config("never").durability == Durability.parse("never")
    pinned = TopicConfig(durability="always")
    assert pinned.to_log_config("never").durability == Durability.parse("always")
    assert TopicConfig().with_durability("never").durability == "never"
    assert pinned.with_durability("never") is pinned
    log = TopicConfig(segment_bytes=2048, retention_ms=None).to_log_config()
    assert (log.segment_bytes, log.retention_ms) == (2048, -1)
    assert log.durability == Durability.parse(DEFAULT_DURABILITY)


def test_broker_config_is_validated() -> None:
    with pytest.raises(InvalidConfigError, match="default_durability"):
        BrokerConfig(default_durability="often")
    with pytest.raises(InvalidPartitionsError):
        BrokerConfig(default_partitions=0)
    with pytest.raises(InvalidConfigError, match="max_message_bytes"):
        BrokerConfig(max_message_bytes=1)
