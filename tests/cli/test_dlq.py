"""``eventyard dlq``: list, show, redrive and purge the dead letters a real app wrote.

Each test lets an app on the embedded broker dead-letter one event in-process (fast, and the
data directory is unlocked again afterwards), then runs the real CLI on that directory.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import msgspec
import pytest

from eventyard.app import App, Context, RetryPolicy
from eventyard.events import EventRegistry
from eventyard.testing import AppHarness
from eventyard.transports import EmbeddedTransport
from tests.cli.support import Cli, seed

registry = EventRegistry()


@registry.event("dlqtest.order", version=1)
class Order(msgspec.Struct):
    n: int


class PaymentDeclined(Exception):
    pass


DLQ = "orders.billing.dlq"
AUDIT_DLQ = "orders.audit.dlq"
POISON = 2
"""The order whose billing fails while the handler is broken."""

WIDE = {"COLUMNS": "200"}
"""Wide enough that no cell of ``dlq show`` wraps."""

Seen = dict[str, list[tuple[int, bytes | None, str]]]


def run_app(data_dir: Path, *, broken: bool, publish: int = 0) -> Seen:
    """Run the billing and audit groups on ``data_dir`` until idle; what each handled.

    While ``broken``, billing fails order ``POISON`` on both of its attempts, so it is
    dead-lettered; the audit group never fails.
    """
    seen: Seen = defaultdict(list)

    async def main() -> None:
        app = App(
            EmbeddedTransport(data_dir), source="dlq-test", registry=registry, commit_interval=0.05
        )

        @app.subscribe(
            "orders", group="billing", retry=RetryPolicy(max_attempts=2, initial_delay=0.001)
        )
        def bill(order: Order, ctx: Context) -> None:
            if broken and order.n == POISON:
                seen["failed"].append((order.n, ctx.message.key, ctx.event_id))
                raise PaymentDeclined(f"card declined for order {order.n}")
            seen["billing"].append((order.n, ctx.message.key, ctx.event_id))

        @app.subscribe("orders", group="audit")
        def audit(order: Order, ctx: Context) -> None:
            seen["audit"].append((order.n, ctx.message.key, ctx.event_id))

        async with AppHarness(app, EmbeddedTransport(data_dir)) as harness:
            for n in range(publish):
                await harness.publish("orders", Order(n), key=f"customer-{n}")
            await harness.settle()

    asyncio.run(main())
    return seen


@pytest.fixture
def dead_lettered(data_dir: Path) -> Seen:
    """A data directory where billing has dead-lettered order ``POISON`` of four."""
    seen = run_app(data_dir, broken=True, publish=4)
    assert sorted(n for n, _, _ in seen["billing"]) == [0, 1, 3]
    assert [n for n, _, _ in seen["failed"]] == [POISON, POISON]
    assert sorted(n for n, _, _ in seen["audit"]) == [0, 1, 2, 3]
    return seen


def pending(cli: Cli) -> dict[str, tuple[int, int]]:
    return {
        row["topic"]: (row["pending"], row["total"])
        for row in cli("dlq", "list", "--json").ok().json()
    }


def test_list_counts_the_pending_dead_letters(cli: Cli, dead_lettered: Seen) -> None:
    assert cli("dlq", "list", "--json").ok().json() == [
        {"topic": AUDIT_DLQ, "pending": 0, "total": 0},
        {"topic": DLQ, "pending": 1, "total": 1},
    ]
    table = cli("dlq", "list").ok()
    assert [line.split() for line in table.stdout.splitlines() if ".dlq" in line] == [
        ["│", AUDIT_DLQ, "│", "0", "│", "0", "│"],
        ["│", DLQ, "│", "1", "│", "1", "│"],
    ]
    assert table.stderr == ""


def test_list_without_dead_letter_topics(cli: Cli, data_dir: Path) -> None:
    seed(data_dir, "orders", [(None, b"{}")])
    assert cli("dlq", "list", "--json").ok().json() == []
    empty = cli("dlq", "list").ok()
    assert empty.stdout == ""
    assert "no dead-letter topics" in empty.stderr


def test_show_says_why_the_event_failed(cli: Cli, dead_lettered: Seen) -> None:
    table = cli("dlq", "show", DLQ, env=WIDE).ok().stdout
    assert f"{DLQ}: 1 pending dead letter" in table
    for text in (
        "handler",
        f"PaymentDeclined: card declined for order {POISON}",
        f"orders/0@{POISON}",
        f"customer-{POISON}",
    ):
        assert text in table, text
    assert "Traceback" not in table

    [entry] = cli("dlq", "show", DLQ, "--json").ok().json_lines()
    assert entry["error_type"] == f"{__name__}.PaymentDeclined"
    assert entry["error"] == f"card declined for order {POISON}"
    assert entry["reason"] == "handler"
    assert entry["attempts"] == 2
    assert entry["group"] == "billing"
    assert (entry["original_topic"], entry["original_partition"]) == ("orders", 0)
    assert entry["original_offset"] == POISON
    assert (entry["partition"], entry["offset"]) == (0, 0)
    assert entry["key"] == f"customer-{POISON}"
    [(_, _, event_id), _] = dead_lettered["failed"]
    assert entry["value"]["id"] == event_id
    assert entry["value"]["data"] == {"n": POISON}
    assert "traceback" not in entry

    [traced] = cli("dlq", "show", DLQ, "--json", "--traceback").ok().json_lines()
    assert traced["traceback"].startswith("Traceback (most recent call last)")
    assert f"PaymentDeclined: card declined for order {POISON}" in traced["traceback"]
    assert "in bill" in traced["traceback"]

    human = cli("dlq", "show", DLQ, "--traceback").ok().stdout
    assert "Traceback (most recent call last)" in human
    assert "0@0" in human


def test_redrive_replays_the_event_to_the_failed_group_alone(
    cli: Cli, data_dir: Path, dead_lettered: Seen
) -> None:
    [(_, key, event_id), _] = dead_lettered["failed"]
    redriven = cli("dlq", "redrive", DLQ).ok()
    assert redriven.stdout.strip() == f"redrove 1 event from {DLQ}: 1 to orders.billing.retry.0"
    again = cli("dlq", "redrive", DLQ, "--json").ok().json()
    assert again == {"topic": DLQ, "redriven": 0, "targets": {}}, "the cursor moved"

    seen = run_app(data_dir, broken=False)
    assert seen["billing"] == [(POISON, key, event_id)], "same event, same key, billing only"
    assert seen["audit"] == [], "the audit group handled it once already"
    assert "failed" not in seen
    assert pending(cli) == {AUDIT_DLQ: (0, 0), DLQ: (0, 1)}


def test_redrive_to_another_topic_republishes_the_original_record(
    cli: Cli, data_dir: Path, dead_lettered: Seen
) -> None:
    [(_, _, event_id), _] = dead_lettered["failed"]
    seed(data_dir, "orders-replay")
    result = cli("dlq", "redrive", DLQ, "--to", "orders-replay", "--json").ok().json()
    assert result == {"topic": DLQ, "redriven": 1, "targets": {"orders-replay": 1}}
    [record] = cli("consume", "orders-replay", "--from-beginning").ok().json_lines()
    assert record["key"] == f"customer-{POISON}"
    assert record["value"]["id"] == event_id
    assert record["value"]["data"] == {"n": POISON}
    assert not [name for name, _ in record["headers"] if name.startswith("eventyard-")]
    assert pending(cli) == {AUDIT_DLQ: (0, 0), DLQ: (0, 1)}


def test_purge_moves_the_cursor_without_replaying(
    cli: Cli, data_dir: Path, dead_lettered: Seen
) -> None:
    refused = cli("dlq", "purge", DLQ)
    refused.failed("purge needs --yes when it cannot ask")

    purged = cli("dlq", "purge", DLQ, "--yes").ok()
    assert purged.stdout.strip() == f"purged 1 dead letter from {DLQ}", "the refusal purged none"
    assert cli("dlq", "purge", DLQ, "-y", "--json").ok().json() == {"topic": DLQ, "purged": 0}
    assert pending(cli) == {AUDIT_DLQ: (0, 0), DLQ: (0, 1)}
    assert run_app(data_dir, broken=False) == {}, "a purged event is handled by nobody"


def test_a_name_that_is_no_dead_letter_topic_is_one_line(cli: Cli) -> None:
    cli("dlq", "show", "orders").failed("'orders' is not a dead-letter topic", "dlq list")
    cli("dlq", "redrive", "orders.billing").failed("not a dead-letter topic")
    cli("dlq", "purge", "orders", "--yes").failed("not a dead-letter topic")
    cli("dlq", "show", DLQ, "--limit", "0").failed("--limit")


def test_unknown_topics_are_one_line_and_change_nothing(cli: Cli, dead_lettered: Seen) -> None:
    cli("dlq", "show", "nope.billing.dlq").failed("unknown topic 'nope.billing.dlq'")
    cli("dlq", "redrive", DLQ, "--to", "missing").failed("unknown topic 'missing'")
    assert pending(cli) == {AUDIT_DLQ: (0, 0), DLQ: (1, 1)}, "a refused command changes nothing"
    assert sorted(t["name"] for t in cli("topics", "list", "--json").ok().json()) == [
        "orders",
        AUDIT_DLQ,
        "orders.audit.retry.0",
        "orders.audit.retry.1",
        "orders.audit.retry.2",
        DLQ,
        "orders.billing.retry.0",
        "orders.billing.retry.1",
        "orders.billing.retry.2",
    ], "no topic created by accident"


def test_a_missing_data_dir_is_one_line(cli: Cli, data_dir: Path) -> None:
    cli("dlq", "list").failed("no data directory")
    cli("dlq", "show", DLQ).failed("no data directory")
    assert not data_dir.exists()


@pytest.mark.parametrize("command", ["list", "show", "redrive", "purge"])
def test_every_subcommand_has_help_with_an_example(cli: Cli, command: str) -> None:
    result = cli("dlq", command, "--help").ok()
    assert f"Usage: eventyard dlq {command}" in result.stdout
    assert f"$ eventyard dlq {command}" in result.stdout
    assert result.stderr == ""


def test_dlq_alone_shows_its_commands(cli: Cli) -> None:
    result = cli("dlq").ok()
    for command in ("list", "show", "redrive", "purge"):
        assert command in result.stdout
    assert "dead-letter" in cli("dlq", "--help").ok().stdout
