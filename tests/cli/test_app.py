"""The root command: version, help for every command, usage errors as one line."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version

import eventyard.cli
from tests.cli.support import Cli

COMMANDS = [
    (),
    ("topics",),
    ("topics", "create"),
    ("topics", "list"),
    ("topics", "describe"),
    ("topics", "delete"),
    ("produce",),
    ("consume",),
    ("groups",),
    ("groups", "list"),
    ("groups", "describe"),
    ("groups", "reset-offsets"),
    ("demo",),
    ("demo", "report"),
    ("deals",),
    ("deals", "top"),
    ("deals", "for"),
    ("deals", "history"),
    ("tour",),
    ("run",),
    ("dlq",),
    ("dlq", "list"),
    ("dlq", "show"),
    ("dlq", "redrive"),
    ("dlq", "purge"),
]


def test_public_surface_is_sorted_and_complete() -> None:
    assert eventyard.cli.__all__ == sorted(eventyard.cli.__all__)
    assert all(hasattr(eventyard.cli, name) for name in eventyard.cli.__all__)


def test_version(cli: Cli) -> None:
    result = cli("--version").ok()
    assert result.stdout.strip() == f"eventyard {version('eventyard')}"


def test_no_arguments_shows_the_commands(cli: Cli) -> None:
    result = cli().ok()
    for name in ("topics", "produce", "consume", "groups", "demo", "tour", "deals", "dlq", "run"):
        assert name in result.stdout
    group = cli("topics").ok()
    for name in ("create", "list", "describe", "delete"):
        assert name in group.stdout


def test_every_command_has_help_with_examples(cli: Cli) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda command: cli(*command, "--help"), COMMANDS))
    for command, result in zip(COMMANDS, results, strict=True):
        result.ok()
        assert "Usage: eventyard" in result.stdout, command
        assert result.stderr == "", command
        if command not in [("topics",), ("groups",), ("dlq",), ("deals",)]:
            assert "$ eventyard" in result.stdout, f"no example in {command} --help"


def test_unknown_command_is_one_line(cli: Cli) -> None:
    cli("topicz").failed("No such command 'topicz'", "eventyard --help")


def test_unknown_option_is_one_line(cli: Cli) -> None:
    cli("topics", "list", "--colour").failed("--colour", "eventyard topics list --help")


def test_bad_number_is_one_line(cli: Cli) -> None:
    cli("topics", "create", "t", "--partitions", "many").failed("--partitions")
