"""``eventyard topics``: create, list, describe, delete, and every mistake as one line."""

from __future__ import annotations

from pathlib import Path

from tests.cli.support import Cli, seed


def test_create_list_describe_delete(cli: Cli, data_dir: Path) -> None:
    created = cli("topics", "create", "listings", "--partitions", "3").ok()
    assert "created topic listings with 3 partitions" in created.stdout
    assert data_dir.is_dir()

    listed = cli("topics", "list").ok()
    assert "listings" in listed.stdout

    described = cli("topics", "describe", "listings").ok()
    for text in ("topic listings", "cleanup.policy", "retention.ms"):
        assert text in described.stdout

    deleted = cli("topics", "delete", "listings").ok()
    assert "deleted topic listings" in deleted.stdout
    empty = cli("topics", "list").ok()
    assert empty.stdout == ""
    assert "eventyard topics create" in empty.stderr


def test_json_output_of_every_topics_command(cli: Cli, data_dir: Path) -> None:
    seed(data_dir, "listings", [(b"k", b"{}")] * 3)
    created = cli(
        "topics",
        "create",
        "owners",
        "-p",
        "2",
        "--config",
        "cleanup.policy=compact",
        "-c",
        "retention.ms=-1",
        "-c",
        "eventyard.durability=always",
        "--json",
    ).ok()
    document = created.json()
    assert document["name"] == "owners"
    assert document["partitions"] == 2
    assert document["messages"] == 0
    assert document["config"]["cleanup.policy"] == "compact"
    assert document["config"]["retention.ms"] == "-1"
    assert document["config"]["eventyard.durability"] == "always"
    assert [p["partition"] for p in document["partition_offsets"]] == [0, 1]

    listed = cli("topics", "list", "--json").ok().json()
    assert [(t["name"], t["messages"]) for t in listed] == [("listings", 3), ("owners", 0)]

    described = cli("topics", "describe", "listings", "--json").ok().json()
    assert described["partition_offsets"] == [
        {"partition": 0, "start_offset": 0, "end_offset": 3, "size_bytes": described["size_bytes"]}
    ]

    assert cli("topics", "delete", "owners", "--json").ok().json() == {"deleted": "owners"}


def test_topic_mistakes_are_one_line(cli: Cli, data_dir: Path) -> None:
    seed(data_dir, "listings")
    cli("topics", "create", "listings").failed("topic 'listings' already exists")
    cli("topics", "create", "bad/name").failed("illegal")
    cli("topics", "create", "t", "--partitions", "0").failed("partitions")
    cli("topics", "create", "t", "--config", "retention.ms=soon").failed("retention.ms")
    cli("topics", "create", "t", "--config", "noequals").failed("expected key=value")
    cli("topics", "describe", "nope").failed("unknown topic 'nope'")
    assert [t["name"] for t in cli("topics", "list", "--json").ok().json()] == ["listings"]
