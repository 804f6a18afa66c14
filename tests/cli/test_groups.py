"""``eventyard groups``: list, describe with lag, reset-offsets and its dry run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from eventyard.client.producer import ProducerRecord
from tests.cli.support import Cli, json_lines, seed

ROWS = [{"id": f"L-{n % 8}", "n": n} for n in range(32)]
"""32 events over 8 keys, which murmur2 spreads 12/4/16 over three partitions."""


def test_list_and_describe_show_committed_end_and_lag(cli: Cli, data_dir: Path) -> None:
    seed(data_dir, "t", json_lines(ROWS, key="id"), partitions=3)
    cli("consume", "t", "-g", "b-group", "--from-beginning").ok()
    cli("consume", "t", "-g", "a-group", "--from-beginning", "--max", "10").ok()
    cli("produce", "t", "-k", "id", input='{"id": "L-1"}\n' * 4).ok()

    groups = cli("groups", "list", "--json").ok().json()
    assert [(g["group"], g["state"], g["total_lag"]) for g in groups] == [
        ("a-group", "Empty", 26),
        ("b-group", "Empty", 4),
    ]
    document = cli("groups", "describe", "b-group", "--json").ok().json()
    assert document["group"] == "b-group"
    assert document["members"] == []
    assert document["total_lag"] == 4
    rows = {p["partition"]: p for p in document["partitions"]}
    assert sorted(rows) == [0, 1, 2]
    for row in rows.values():
        assert row["topic"] == "t"
        assert row["lag"] == row["end_offset"] - row["committed_offset"]
    assert sorted(row["lag"] for row in rows.values()) == [0, 0, 4]

    human = cli("groups", "describe", "b-group").ok().stdout
    for text in ("group b-group", "Empty", "committed", "end offset", "lag"):
        assert text in human
    assert "a-group" in cli("groups", "list").ok().stdout


def test_reset_to_earliest_replays_and_to_latest_skips(cli: Cli, data_dir: Path) -> None:
    seed(data_dir, "t", json_lines(ROWS, key="id"), partitions=3)
    cli("consume", "t", "-g", "g", "--from-beginning").ok()
    dry = cli(
        "groups", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--dry-run", "--json"
    ).ok()
    assert dry.json()["dry_run"] is True
    ends = [p["current_offset"] for p in dry.json()["partitions"]]
    assert ends == [12, 4, 16]
    assert all(p["new_offset"] == 0 for p in dry.json()["partitions"])

    moved = cli("groups", "reset-offsets", "g", "--topic", "t", "--to-earliest").ok()
    assert "moved group g" in moved.stdout
    assert len(cli("consume", "t", "-g", "g").ok().json_lines()) == 32

    offsets = cli("groups", "reset-offsets", "g", "-t", "t", "--to-offset", "2", "--json").ok()
    assert [p["new_offset"] for p in offsets.json()["partitions"]] == [2, 2, 2]
    assert len(cli("consume", "t", "-g", "g").ok().json_lines()) == 32 - 3 * 2

    latest = cli("groups", "reset-offsets", "g", "-t", "t", "--to-latest", "--json").ok().json()
    assert [p["new_offset"] for p in latest["partitions"]] == ends
    assert cli("consume", "t", "-g", "g").ok().json_lines() == []


def test_reset_to_datetime_starts_at_the_first_later_event(cli: Cli, data_dir: Path) -> None:
    base = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    seed(
        data_dir,
        "t",
        [
            ProducerRecord(
                str(hour).encode(),
                b"{}",
                timestamp_ms=int((base + timedelta(hours=hour)).timestamp() * 1000),
            )
            for hour in range(6)
        ],
        partitions=2,
    )
    cli("groups", "reset-offsets", "g", "-t", "t", "--to-datetime", "2026-03-01T12:00:00Z").ok()
    records = cli("consume", "t", "-g", "g").ok().json_lines()
    assert sorted(r["key"] for r in records) == ["3", "4", "5"]
    cli("groups", "reset-offsets", "g", "-t", "t", "--to-datetime", "2026-03-01T13:30+01:00").ok()
    records = cli("consume", "t", "-g", "g").ok().json_lines()
    assert sorted(r["key"] for r in records) == ["4", "5"]


def test_group_mistakes_are_one_line(cli: Cli, data_dir: Path) -> None:
    seed(data_dir, "t", json_lines(ROWS), partitions=3)
    cli("groups", "describe", "nobody").failed("group 'nobody' does not exist")
    cli("groups", "reset-offsets", "g", "-t", "t", "--to-earliest", "--to-latest").failed(
        "exactly one of"
    )
    cli("groups", "reset-offsets", "g", "-t", "t", "--to-datetime", "yesterday").failed(
        "--to-datetime", "ISO 8601"
    )
    cli("groups", "reset-offsets", "g", "-t", "nope", "--to-earliest").failed("unknown topic")
    cli("groups", "reset-offsets", "g", "--to-earliest").failed("--topic")
