"""``--broker HOST:PORT``: the data commands against a real ``eventyard serve`` subprocess.

One server serves the whole module (each test uses its own topic names); every command runs
as a real CLI subprocess with ``EVENTYARD_DATA_DIR`` pointing at a directory that must stay
untouched, since ``--broker`` replaces the data directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventyard.broker import partition_for_key
from tests.cli.support import Cli, Result
from tests.protocols.kafka.conftest import free_port, start_server, stop_server


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running ``eventyard serve``; yields its ``127.0.0.1:PORT``."""
    directory = tmp_path_factory.mktemp("serve")
    port = free_port()
    process = start_server(directory / "data", port, log=directory / "serve.log")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop_server(process)


@pytest.fixture(autouse=True)
def _data_dir_untouched(data_dir: Path) -> Iterator[None]:
    yield
    assert not data_dir.exists(), "--broker must not create or open the data directory"


def test_topics_create_list_describe_delete(cli: Cli, broker: str) -> None:
    created = cli("topics", "create", "remote-topics", "-p", "3", "--broker", broker, "--json")
    assert created.ok().json()["partitions"] == 3
    listed = cli("topics", "list", "--broker", broker, "--json").ok().json()
    assert "remote-topics" in {topic["name"] for topic in listed}
    described = cli("topics", "describe", "remote-topics", "--broker", broker, "--json").ok()
    assert [p["partition"] for p in described.json()["partition_offsets"]] == [0, 1, 2]
    assert (
        "topic remote-topics"
        in cli("topics", "describe", "remote-topics", "--broker", broker).ok().stdout
    )
    cli("topics", "create", "remote-topics", "--broker", broker).failed("already exists")
    cli("topics", "delete", "remote-topics", "--broker", broker).ok()
    cli("topics", "describe", "remote-topics", "--broker", broker).failed("unknown topic")


def test_bad_topic_name_and_config_are_user_mistakes(cli: Cli, broker: str) -> None:
    cli("topics", "create", "bad name!", "--broker", broker).failed("illegal")
    cli("topics", "create", "remote-x", "-c", "nonsense=1", "--broker", broker).failed("nonsense")


def test_produce_places_keys_by_murmur2_and_consume_reads_them(cli: Cli, broker: str) -> None:
    cli("topics", "create", "remote-data", "-p", "3", "--broker", broker).ok()
    rows = [{"id": f"L-{i}", "price": i} for i in range(12)]
    lines = "".join(json.dumps(row) + "\n" for row in rows)
    produced = cli("produce", "remote-data", "-k", "id", "--broker", broker, "--json", input=lines)
    summary = produced.ok().json()
    assert summary["events"] == 12
    counts = {p["partition"]: p["events"] for p in summary["partitions"]}
    expected: dict[int, int] = {}
    for row in rows:
        partition = partition_for_key(row["id"].encode(), 3)
        expected[partition] = expected.get(partition, 0) + 1
    assert counts == expected

    read = cli("consume", "remote-data", "--from-beginning", "--broker", broker).ok()
    records = read.json_lines()
    assert sorted(r["value"]["price"] for r in records) == list(range(12))
    assert all(r["partition"] == partition_for_key(r["key"].encode(), 3) for r in records)

    partition = max(expected, key=lambda p: expected[p])
    one = cli(
        "consume", "remote-data", "-p", str(partition), "--offset", "1", "--broker", broker
    ).ok()
    assert [r["offset"] for r in one.json_lines()] == list(range(1, expected[partition]))
    nothing = cli("consume", "remote-data", "--broker", broker).ok()
    assert nothing.stdout == "" and "from-beginning" in nothing.stderr


def test_group_consume_commits_what_it_printed(cli: Cli, broker: str) -> None:
    """A group's second run continues after the first one's last printed event; the
    ``groups`` commands show and move its committed offset."""
    cli("topics", "create", "remote-group", "--broker", broker).ok()
    lines = "".join(json.dumps({"n": i}) + "\n" for i in range(5))
    cli("produce", "remote-group", "--broker", broker, input=lines).ok()
    group = ("--group", "remote-readers", "--from-beginning", "--broker", broker)
    first = cli("consume", "remote-group", *group, "--max", "2").ok().json_lines()
    rest = cli("consume", "remote-group", *group).ok().json_lines()
    assert [r["value"]["n"] for r in first + rest] == [0, 1, 2, 3, 4]

    listed = cli("groups", "list", "--broker", broker, "--json").ok().json()
    assert {"group": "remote-readers", "state": "Empty", "members": 0, "total_lag": 0} in listed
    described = cli("groups", "describe", "remote-readers", "--broker", broker, "--json").ok()
    (partition,) = described.json()["partitions"]
    assert partition["committed_offset"] == partition["end_offset"] == 5

    reset = ("groups", "reset-offsets", "remote-readers", "-t", "remote-group", "--broker", broker)
    preview = cli(*reset, "--to-offset", "3", "--dry-run", "--json").ok().json()
    assert preview["partitions"] == [{"partition": 0, "current_offset": 5, "new_offset": 3}]
    cli(*reset, "--to-earliest").ok()
    again = cli("consume", "remote-group", *group).ok().json_lines()
    assert [r["value"]["n"] for r in again] == [0, 1, 2, 3, 4]
    cli("groups", "describe", "remote-nobody", "--broker", broker).failed("does not exist")


def test_unknown_topic_and_bad_options_fail_in_one_line(cli: Cli, broker: str) -> None:
    cli("produce", "remote-missing", "--broker", broker, input="{}\n").failed("unknown topic")
    cli("consume", "remote-missing", "--broker", broker).failed("unknown topic")
    cli("topics", "create", "remote-parts", "-p", "2", "--broker", broker).ok()
    cli("consume", "remote-parts", "-p", "5", "--broker", broker).failed("partitions 0 to 1")
    cli("produce", "remote-parts", "-p", "5", "--broker", broker, input="{}\n").failed(
        "partitions 0 to 1"
    )
    cli("consume", "remote-parts", "-p", "0", "--offset", "9", "--broker", broker).failed(
        "holds offsets 0 to 0"
    )
    cli("topics", "list", "--broker", "no-port").failed("--broker wants HOST:PORT")


def test_unreachable_broker_is_one_runtime_error_line(cli: Cli) -> None:
    port = free_port()
    for args in (("topics", "list"), ("consume", "t"), ("produce", "t")):
        cli(*args, "--broker", f"127.0.0.1:{port}", input="{}\n").failed(
            f"cannot reach a Kafka broker at 127.0.0.1:{port}", code=1
        )


def test_missing_kafka_extra_says_what_to_install(
    tmp_path: Path, cli_env: dict[str, str], data_dir: Path
) -> None:
    """Without aiokafka (its import made to fail in the child), one line names the extra."""
    program = (
        "import sys; sys.modules['aiokafka'] = None; "
        "from eventyard.cli.app import main; main(sys.argv[1:])"
    )
    completed = subprocess.run(
        [sys.executable, "-c", program, "topics", "list", "--broker", "127.0.0.1:9"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**cli_env, "EVENTYARD_DATA_DIR": str(data_dir)},
        timeout=60,
        check=False,
    )
    result = Result(("topics", "list"), completed.returncode, completed.stdout, completed.stderr)
    result.failed("pip install 'eventyard[kafka]'")
