"""``eventyard produce``: JSON lines in, keyed placement, validation before any write."""

from __future__ import annotations

from pathlib import Path

from eventyard.broker import partition_for_key
from tests.cli.support import Cli, seed

LINES = "".join(f'{{"id": "L-{n}", "seq": {n}, "price": {100_000 + n}}}\n' for n in range(20))


def test_produce_then_consume_round_trip_with_key_field(cli: Cli) -> None:
    cli("topics", "create", "listings", "--partitions", "3").ok()
    produced = cli("produce", "listings", "--key-field", "id", input=LINES).ok()
    assert "produced 20 events" in produced.stdout

    records = cli("consume", "listings", "--from-beginning").ok().json_lines()
    assert len(records) == 20
    by_seq = {r["value"]["seq"]: r for r in records}
    for n in range(20):
        record = by_seq[n]
        assert record["key"] == f"L-{n}"
        assert record["value"] == {"id": f"L-{n}", "seq": n, "price": 100_000 + n}
        assert record["partition"] == partition_for_key(f"L-{n}".encode(), 3)
        assert record["topic"] == "listings"
        assert record["headers"] == []
        assert isinstance(record["timestamp"], int)
    for partition in range(3):
        offsets = [r["offset"] for r in records if r["partition"] == partition]
        assert offsets == list(range(len(offsets)))


def test_json_summary_counts_per_partition(cli: Cli, data_dir: Path) -> None:
    seed(data_dir, "listings", partitions=3)
    first = cli("produce", "listings", "-k", "id", "--json", input=LINES).ok().json()
    assert first["topic"] == "listings"
    assert first["events"] == 20
    assert first["bytes"] == sum(len(line) for line in LINES.splitlines())
    assert sum(p["events"] for p in first["partitions"]) == 20
    assert all(p["first_offset"] == 0 for p in first["partitions"])

    second = cli("produce", "listings", "-k", "id", "--json", input=LINES).ok().json()
    for before, after in zip(first["partitions"], second["partitions"], strict=True):
        assert after["first_offset"] == before["end_offset"]
        assert after["events"] == before["events"]


def test_values_are_stored_as_given_and_non_string_keys_as_json(cli: Cli, data_dir: Path) -> None:
    seed(data_dir, "t")
    lines = '  {"n": 42,   "x": [1, 2]}  \n\n{"n": null}\n'
    cli("produce", "t", "--key-field", "n", input=lines).ok()
    records = cli("consume", "t", "--from-beginning").ok().json_lines()
    assert [r["key"] for r in records] == ["42", None]
    assert records[0]["value"] == {"n": 42, "x": [1, 2]}


def test_partition_option_places_every_event(cli: Cli, data_dir: Path) -> None:
    seed(data_dir, "t", partitions=3)
    summary = cli("produce", "t", "--partition", "2", "--json", input=LINES).ok().json()
    assert [(p["partition"], p["events"]) for p in summary["partitions"]] == [(2, 20)]
    cli("produce", "t", "--partition", "3", input=LINES).failed("--partition 3", "0 to 2")


def test_bad_input_names_the_line_and_writes_nothing(cli: Cli, data_dir: Path) -> None:
    seed(data_dir, "t")
    bad = '{"id": 1}\n{"id": 2}\n{"id": 3,}\n{"id": 4}\n'
    cli("produce", "t", input=bad).failed("stdin line 3", "invalid JSON")
    cli("produce", "t", "--key-field", "id", input='{"id": 1}\n{"other": 2}\n').failed(
        "stdin line 2", "no field 'id'"
    )
    cli("produce", "t", "--key-field", "id", input='{"id": 1}\n[1, 2]\n').failed(
        "stdin line 2", "needs a JSON object"
    )
    assert cli("topics", "describe", "t", "--json").ok().json()["messages"] == 0


def test_unknown_topic_is_a_user_mistake_and_is_not_created(cli: Cli, data_dir: Path) -> None:
    seed(data_dir, "t")
    cli("produce", "missing", input='{"a": 1}\n').failed("unknown topic 'missing'")
    assert [t["name"] for t in cli("topics", "list", "--json").ok().json()] == ["t"]
