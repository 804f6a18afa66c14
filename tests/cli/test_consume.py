"""``eventyard consume``: JSON lines, rendering of any bytes, groups, partitions, offsets."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from eventyard.client.producer import ProducerRecord
from tests.cli.support import Cli, json_lines, seed

ROWS = [{"id": f"L-{n % 4}", "n": n} for n in range(12)]


def test_values_keys_and_headers_render_as_json_text_or_base64(cli: Cli, data_dir: Path) -> None:
    seed(
        data_dir,
        "raw",
        [
            ProducerRecord(b"k1", b'{"a": 1}', headers=[("source", b"crm")]),
            ProducerRecord(b"\xff\xfe", b"hello world"),
            ProducerRecord(None, b"\x00\x9f\x92\x96", headers=[("trace", None)]),
            ProducerRecord(b"k1", None),
        ],
    )
    records = cli("consume", "raw", "--from-beginning").ok().json_lines()
    assert [r["value"] for r in records] == [
        {"a": 1},
        "hello world",
        {"$base64": "AJ+Slg=="},
        None,
    ]
    assert [r["key"] for r in records] == ["k1", {"$base64": "//4="}, None, "k1"]
    assert records[0]["headers"] == [["source", "crm"]]
    assert records[2]["headers"] == [["trace", None]]
    assert [r["offset"] for r in records] == [0, 1, 2, 3]


def test_without_a_group_reading_starts_at_the_end_unless_asked(cli: Cli, data_dir: Path) -> None:
    seed(data_dir, "t", json_lines(ROWS), partitions=2)
    result = cli("consume", "t").ok()
    assert result.stdout == ""
    assert "--from-beginning" in result.stderr
    assert len(cli("consume", "t", "--from-beginning", "--max", "5").ok().json_lines()) == 5
    waited = cli("consume", "t", "--from-beginning", "--timeout", "0.3", "--json").ok()
    assert sorted(r["value"]["n"] for r in waited.json_lines()) == list(range(12))
    assert waited.stderr == ""


def test_a_group_commits_what_it_printed_and_continues_there(cli: Cli, data_dir: Path) -> None:
    seed(data_dir, "t", json_lines(ROWS, key="id"), partitions=3)
    first = cli("consume", "t", "-g", "g1", "--from-beginning", "--max", "5").ok().json_lines()
    rest = cli("consume", "t", "-g", "g1").ok().json_lines()
    assert len(first) == 5
    assert len(rest) == 7
    seen = {(r["partition"], r["offset"]) for r in first + rest}
    assert len(seen) == 12
    assert cli("consume", "t", "-g", "g1").ok().json_lines() == []


def test_partition_and_offset(cli: Cli, data_dir: Path) -> None:
    rows = json_lines(ROWS)
    seed(data_dir, "t", [ProducerRecord(k, v, partition=1) for k, v in rows], partitions=2)
    records = cli("consume", "t", "--partition", "1", "--offset", "10").ok().json_lines()
    assert [(r["partition"], r["offset"], r["value"]["n"]) for r in records] == [
        (1, 10, 10),
        (1, 11, 11),
    ]
    assert cli("consume", "t", "--partition", "0", "--from-beginning").ok().json_lines() == []


def test_consume_mistakes_are_one_line(cli: Cli, data_dir: Path) -> None:
    seed(data_dir, "t", json_lines(ROWS), partitions=2)
    cli("consume", "nope").failed("unknown topic 'nope'")
    cli("consume", "t", "--offset", "3").failed("--offset needs --partition")
    cli("consume", "t", "--partition", "0", "--group", "g").failed("drop --group")
    cli("consume", "t", "--partition", "5").failed("--partition 5", "0 to 1")
    cli("consume", "t", "--partition", "0", "--offset", "99").failed("holds offsets 0 to")


def test_a_closed_stdout_stops_quietly(
    cli: Cli, data_dir: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    seed(data_dir, "t", json_lines(ROWS * 200))
    completed = subprocess.run(
        ["bash", "-c", "eventyard consume t --from-beginning | head -n 2"],
        cwd=tmp_path,
        env={**cli_env, "EVENTYARD_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert len(completed.stdout.splitlines()) == 2
    assert completed.stderr == ""


def test_ctrl_c_stops_cleanly_and_keeps_the_commits(
    cli: Cli, data_dir: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    seed(data_dir, "t", json_lines(ROWS), partitions=2)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "eventyard.cli",
            "consume",
            "t",
            "-g",
            "g",
            "--from-beginning",
            "--timeout",
            "60",
        ],
        cwd=tmp_path,
        env={**cli_env, "EVENTYARD_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    printed = [process.stdout.readline() for _ in ROWS]
    assert all('"topic":"t"' in line for line in printed)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert stdout == ""
    assert "Traceback" not in stderr
    assert cli("groups", "describe", "g", "--json").ok().json()["total_lag"] == 0
