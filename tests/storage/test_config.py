"""Durability strings and LogConfig validation."""

from __future__ import annotations

import pytest

from eventyard.errors import ConfigError
from eventyard.storage import Durability, LogConfig


@pytest.mark.parametrize(
    ("text", "mode", "interval"),
    [
        ("always", "always", 0),
        ("never", "never", 0),
        ("interval:100", "interval", 100),
        (" Interval:5 ", "interval", 5),
        ("ALWAYS", "always", 0),
    ],
)
def test_parse_accepts_the_three_forms(text: str, mode: str, interval: int) -> None:
    durability = Durability.parse(text)
    assert (durability.mode, durability.interval_ms) == (mode, interval)
    assert Durability.parse(str(durability)) == durability


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sometimes",
        "interval",
        "interval:",
        "interval:0",
        "interval:-5",
        "interval:1.5",
        "interval:abc",
        "always:3",
        "never:1",
    ],
)
def test_parse_rejects_bad_strings_with_a_clear_error(text: str) -> None:
    with pytest.raises(ConfigError, match="durability"):
        Durability.parse(text)


def test_durability_checks_direct_construction() -> None:
    with pytest.raises(ConfigError):
        Durability("interval", 0)
    with pytest.raises(ConfigError):
        Durability("always", 10)
    with pytest.raises(ConfigError):
        Durability("sometimes")  # type: ignore[arg-type]


def test_log_config_defaults_follow_kafka() -> None:
    config = LogConfig()
    assert config.segment_bytes == 1 << 30
    assert config.index_interval_bytes == 4096
    assert config.retention_bytes == -1
    assert config.cleanup_policy == "delete"
    assert config.durability == Durability("always")
    assert config.deletes and not config.compacts


@pytest.mark.parametrize(
    "kwargs",
    [
        {"segment_bytes": 10},
        {"segment_bytes": 1 << 31},
        {"segment_ms": 0},
        {"index_interval_bytes": 0},
        {"retention_ms": -2},
        {"retention_bytes": -5},
        {"delete_retention_ms": -1},
        {"cleanup_policy": "shred"},
        {"durability": "always"},
    ],
)
def test_log_config_rejects_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        LogConfig(**kwargs)  # type: ignore[arg-type]


def test_cleanup_policy_flags() -> None:
    both = LogConfig(cleanup_policy="compact,delete")
    assert both.compacts and both.deletes
    compact = LogConfig(cleanup_policy="compact")
    assert compact.compacts and not compact.deletes
