"""Opening the broker for a command: data-dir resolution, existence and the exclusive lock."""

from __future__ import annotations

import asyncio
from pathlib import Path

from eventyard.broker import Broker, TopicConfig
from eventyard.client import Producer
from tests.cli.support import Cli, run_cli


def test_data_dir_option_wins_over_the_environment_variable(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "other"
    cli("topics", "create", "here", "--data-dir", str(other)).ok()
    names = [
        t["name"] for t in cli("topics", "list", "--data-dir", str(other), "--json").ok().json()
    ]
    assert names == ["here"]


def test_default_data_dir_is_dot_eventyard(tmp_path: Path, cli_env: dict[str, str]) -> None:
    run_cli(("topics", "create", "t"), cwd=tmp_path, env=cli_env).ok()
    assert (tmp_path / ".eventyard").is_dir()


def test_missing_data_dir_is_not_created_by_read_commands(cli: Cli, data_dir: Path) -> None:
    cli("topics", "list").failed("no data directory", str(data_dir))
    cli("produce", "t", input="{}\n").failed("no data directory")
    assert not data_dir.exists()


def test_a_file_is_not_a_data_dir(cli: Cli, data_dir: Path) -> None:
    data_dir.write_text("not a directory")
    cli("topics", "create", "t").failed("not a directory")


async def test_a_locked_data_dir_is_a_one_line_user_mistake(cli: Cli, data_dir: Path) -> None:
    async with await Broker.open(data_dir):
        result = await asyncio.to_thread(cli, "topics", "list")
    result.failed(str(data_dir))
    await asyncio.to_thread(lambda: cli("topics", "list").ok())


def test_a_damaged_log_is_a_runtime_failure_with_exit_1(cli: Cli, data_dir: Path) -> None:
    async def write_segments() -> None:
        async with await Broker.open(data_dir) as broker:
            await broker.create_topic("t", TopicConfig(segment_bytes=1024))
            async with Producer(broker) as producer:
                for n in range(40):
                    await producer.send("t", b'{"n": %d, "pad": "%s"}' % (n, b"x" * 40))

    asyncio.run(write_segments())
    segments = sorted((data_dir / "t-0").glob("*.log"))
    assert len(segments) > 2, "the topic needs closed segments"
    damaged = bytearray(segments[0].read_bytes())
    damaged[100] ^= 0xFF
    segments[0].write_bytes(bytes(damaged))

    result = cli("consume", "t", "--from-beginning")
    assert result.code == 1
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("error: ")
    assert "damaged" in lines[-1]
    assert all(line.startswith("warning: ") for line in lines[:-1])
    assert len(lines) == len(set(lines)), "each warning is shown once"
    assert "Traceback" not in result.stderr


def test_a_directory_of_other_files_is_left_alone(cli: Cli, data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "notes.txt").write_text("mine")
    cli("topics", "create", "t").failed("no eventyard data")
    assert [p.name for p in data_dir.iterdir()] == ["notes.txt"]
