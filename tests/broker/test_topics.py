"""Kafka's topic name rules and the durable, atomically rewritten topic catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventyard.broker.config import TopicConfig
from eventyard.broker.topics import (
    CATALOG_FILE,
    TopicCatalog,
    orphan_directories,
    partition_directory,
    validate_topic_name,
)
from eventyard.errors import InvalidTopicError, TopicExistsError, UnknownTopicError
from eventyard.storage import OSFileSystem


@pytest.mark.parametrize("name", ["orders", "a.b_c-d", "X" * 249, "..a", "_", "0"])
def test_legal_names(name: str) -> None:
    validate_topic_name(name)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "cannot be empty"),
        (".", "cannot be '.' or '..'"),
        ("..", "cannot be '.' or '..'"),
        ("x" * 250, "250 characters long, at most 249"),
        ("with space", "character other than ASCII alphanumerics"),
        ("slash/topic", "character other than ASCII alphanumerics"),
        ("émoji", "character other than ASCII alphanumerics"),
    ],
)
def test_illegal_names_say_why(name: str, reason: str) -> None:
    with pytest.raises(InvalidTopicError, match=reason):
        validate_topic_name(name)


def test_partition_directories_are_kafkas() -> None:
    assert partition_directory(Path("/d"), "orders", 3) == Path("/d/orders-3")


def test_catalog_survives_reopen_and_removes(tmp_path: Path) -> None:
    fs = OSFileSystem()
    catalog = TopicCatalog(tmp_path, fs)
    config = TopicConfig(partitions=3, retention_ms=None, durability="always")
    catalog.add("orders", config)
    catalog.add("audit", TopicConfig())
    reopened = TopicCatalog(tmp_path, fs)
    assert reopened.names() == ["audit", "orders"]
    assert reopened.get("orders").config == config
    assert reopened.get("orders").created_ms == catalog.get("orders").created_ms
    reopened.remove("audit")
    assert TopicCatalog(tmp_path, fs).names() == ["orders"]
    assert not (tmp_path / (CATALOG_FILE + ".tmp")).exists()


def test_catalog_refuses_duplicates_collisions_and_internal_names(tmp_path: Path) -> None:
    catalog = TopicCatalog(tmp_path, OSFileSystem())
    catalog.add("a.b", TopicConfig())
    with pytest.raises(TopicExistsError):
        catalog.add("a.b", TopicConfig())
    with pytest.raises(InvalidTopicError, match=r"collides with existing topic 'a\.b'"):
        catalog.add("a_b", TopicConfig())
    with pytest.raises(InvalidTopicError, match="reserved"):
        catalog.add("__consumer_offsets", TopicConfig())
    with pytest.raises(UnknownTopicError):
        catalog.remove("missing")


def test_orphan_directories_are_partitions_of_no_topic(tmp_path: Path) -> None:
    catalog = TopicCatalog(tmp_path, OSFileSystem())
    catalog.add("orders", TopicConfig(partitions=2))
    catalog.add("a-1", TopicConfig())
    listing = [
        "orders-0",
        "orders-1",
        "orders-2",
        "gone-0",
        "a-1-0",
        "topics.json",
        "__consumer_offsets",
        "orders-01",
    ]
    assert orphan_directories(listing, catalog) == ["gone-0", "orders-2"]
