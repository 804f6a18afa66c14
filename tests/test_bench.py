"""The benchmark harness runs and reports every scenario; its parts do what they say.

These tests check the machinery (events, targets, table, report, peers, the CLI in ``--quick``
mode), never the figures: a smoke run on a busy machine proves nothing about speed.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from bench.batches import encode, sized_batch
from bench.events import EventPool, generate
from bench.harness import (
    Comparison,
    Figure,
    Measurement,
    Outcome,
    PeerFigure,
    Scenario,
    Settings,
    Target,
    Verdict,
    outcome_to_dict,
    rate,
    run_one,
    table_rows,
)
from bench.machine import describe
from bench.peers import nats_jetstream
from bench.peers.faststream_redis import FastStreamRedis
from bench.peers.raw_disk import write_and_sync
from bench.peers.redis_streams import RedisStreams, connect
from bench.report import markdown, write_docs
from bench.scenarios import SCENARIOS
from bench.scenarios.app_handlers import (
    eventyard_handlers,
    eventyard_latencies,
    listings,
    percentile,
    redis_latencies,
)
from bench.scenarios.demo_latency import demo_latencies, market
from bench.scenarios.kafka_confluent import FAST_READER, consume_all, produce_all
from bench.scenarios.kafka_latency import paced_latencies
from bench.scenarios.kafka_payloads import MESSAGE_BYTES, create_topic, payloads
from bench.scenarios.served import serve

from eventyard.records import decode_batch, split_batches
from tests.services import require_service

ROOT = Path(__file__).resolve().parent.parent


# -- events -----------------------------------------------------------------------------


def test_events_are_deterministic_per_seed_and_about_200_bytes() -> None:
    first, again, other = generate(1000, seed=7), generate(1000, seed=7), generate(1000, seed=8)
    assert first == again
    assert first != other
    sizes = [len(event.value) for event in first]
    assert 180 <= sum(sizes) / len(sizes) <= 230
    assert all(json.loads(event.value)["subject"].encode() == event.key for event in first)


def test_pool_yields_exactly_the_total_in_full_batches() -> None:
    pool = EventPool(batch_size=500, size=1200)
    assert len(pool.batches) == 3
    batches = list(pool.take(5000))
    assert [len(batch) for batch in batches] == [500] * 10
    assert batches[3] == batches[0]
    with pytest.raises(ValueError, match="multiple of the batch size"):
        list(pool.take(750))


def test_sized_batch_is_the_largest_valid_batch_that_fits() -> None:
    pool = EventPool(batch_size=500, size=1000)
    batch, count = sized_batch(pool, 65536)
    assert len(batch) <= 65536
    assert len(encode(pool.batches[0][: count + 1])) > 65536
    ((position, header),) = split_batches(batch)
    assert position == 0 and header.record_count == count
    assert [r.value for r in decode_batch(batch)] == [e.value for e in pool.batches[0][:count]]


def test_scenario_names_are_unique_and_each_has_a_method() -> None:
    names = [scenario.name for scenario in SCENARIOS]
    assert len(set(names)) == len(names) == 16
    assert all(len(scenario.method.split()) > 40 for scenario in SCENARIOS)


# -- targets, outcomes, table -----------------------------------------------------------


def test_ratio_target_needs_a_peer_figure() -> None:
    target = Target(Comparison.RATIO_AT_LEAST, 3.0)
    fast, slow = Figure(900_000, "events/s"), Figure(200_000, "events/s")
    assert target.judge(fast, PeerFigure("peer", slow)) is Verdict.PASS
    assert target.judge(slow, PeerFigure("peer", fast)) is Verdict.FAIL
    assert target.judge(fast, PeerFigure("peer", None, "down")) is Verdict.NO_PEER
    assert target.judge(fast, None) is Verdict.NO_PEER
    assert str(target) == ">= 3x peer"
    assert str(Target(Comparison.RATIO_AT_LEAST, 0.7)) == ">= 70% of peer"


def test_absolute_targets() -> None:
    at_least = Target(Comparison.AT_LEAST, 300_000, "events/s")
    below = Target(Comparison.BELOW, 2.0, "s")
    assert at_least.judge(Figure(300_000, "events/s"), None) is Verdict.PASS
    assert at_least.judge(Figure(299_999, "events/s"), None) is Verdict.FAIL
    assert below.judge(Figure(1.99, "s"), None) is Verdict.PASS
    assert below.judge(Figure(2.0, "s"), None) is Verdict.FAIL
    assert str(at_least) == ">= 300k events/s"
    assert str(below) == "< 2 s"


def _scenario(run: Callable[[Settings], Measurement]) -> Scenario:
    return Scenario("demo", "Demo", Target(Comparison.RATIO_AT_LEAST, 2.0), run)


def test_run_one_builds_the_outcome_and_its_ratio(tmp_path: Path) -> None:
    def measure(settings: Settings) -> Measurement:
        return Measurement(
            figure=rate(1000, [0.5, 0.25]),
            peer=PeerFigure("peer", Figure(1000, "events/s")),
            notes=("note",),
        )

    outcome = run_one(_scenario(measure), Settings(workdir=tmp_path))
    assert outcome.figure == Figure(4000, "events/s")
    assert outcome.ratio == pytest.approx(4.0)
    assert outcome.verdict is Verdict.PASS
    (row,) = table_rows([outcome])
    assert row == (
        "1. Demo",
        "4,000 events/s",
        "peer",
        "1,000 events/s",
        "4.00x",
        ">= 2x peer",
        "pass",
    )
    assert outcome_to_dict(outcome)["verdict"] == "pass"


def test_a_scenario_that_raises_is_reported_as_an_error(tmp_path: Path) -> None:
    def broken(settings: Settings) -> Measurement:
        raise OSError("disk on fire")

    outcome = run_one(_scenario(broken), Settings(workdir=tmp_path))
    assert outcome.verdict is Verdict.ERROR
    assert outcome.error == "OSError: disk on fire"
    assert outcome.figure is None
    assert "error: OSError: disk on fire" in table_rows([outcome])[0]


def test_report_holds_table_machine_and_methods(tmp_path: Path) -> None:
    outcome = Outcome(
        name=SCENARIOS[0].name,
        title=SCENARIOS[0].title,
        target=SCENARIOS[0].target,
        figure=Figure(123_456, "events/s"),
        peer=PeerFigure("Redis Streams XADD", None, "Redis at x is unreachable"),
        notes=("measured | carefully",),
    )
    machine = describe(tmp_path)
    when = datetime.datetime(2026, 11, 23, 20, 30, tzinfo=datetime.UTC)
    text = markdown([outcome], SCENARIOS, machine, Settings(workdir=tmp_path), when)
    assert "2026-11-23 20:30 UTC" in text
    assert machine.cpu in text and machine.kernel in text and machine.python in text
    assert machine.speed in text and int(machine.speed.split()[0].replace(",", "")) > 0
    assert "| 1. " + SCENARIOS[0].title in text
    assert "123k events/s" in text and "no peer" in text
    assert "**" + SCENARIOS[0].title + "**: measured | carefully." in text
    assert all(f"### {i}. {s.title}" in text for i, s in enumerate(SCENARIOS, 1))
    assert "```python" not in text
    path = write_docs(text, tmp_path / "docs" / "benchmarks.md")
    assert path.read_text(encoding="utf-8") == text


# -- peers ------------------------------------------------------------------------------


def test_raw_disk_writes_every_byte(tmp_path: Path) -> None:
    seconds = write_and_sync(tmp_path / "raw.bin", b"x" * 65536, 3 << 20)
    assert seconds > 0
    assert (tmp_path / "raw.bin").stat().st_size == 3 << 20


def test_redis_peer_unreachable_says_why() -> None:
    peer, reason = connect("redis://127.0.0.1:1/0", "eventyard-test:")
    assert peer is None
    assert "127.0.0.1:1" in reason and "unreachable" in reason


def test_redis_peer_round_trip_and_cleanup() -> None:
    require_service("Redis", 6379)
    url = "redis://127.0.0.1:6379/0"
    peer = RedisStreams(url, f"eventyard-test:{uuid.uuid4().hex}:")
    stream = peer.key("stream")
    pool = EventPool(batch_size=100, size=300)
    try:
        assert peer.produce(stream, pool.take(600)) > 0
        seconds, entries, value_bytes = peer.consume(stream, "group", 100)
        assert seconds > 0
        assert entries == 600
        assert value_bytes == sum(len(e.value) for batch in pool.take(600) for e in batch)
    finally:
        peer.close()
    client = redis.Redis.from_url(url)
    try:
        assert client.exists(stream) == 0
    finally:
        client.close()


def test_nats_peer_unreachable_says_why() -> None:
    peer, reason = asyncio.run(nats_jetstream.connect("nats://127.0.0.1:1", "eventyard-test:"))
    assert peer is None
    assert "127.0.0.1:1" in reason and "unreachable" in reason


def test_nats_peer_round_trip_and_cleanup() -> None:
    require_service("NATS", 4222)
    values = payloads(7)

    async def scenario() -> tuple[str, list[str]]:
        peer, reason = await nats_jetstream.connect(
            "nats://127.0.0.1:4222", f"eventyard-test:{uuid.uuid4().hex}:"
        )
        assert peer is not None, reason
        try:
            subject = await peer.create_stream("smoke")
            assert await peer.produce(subject, values, 300) > 0
            assert await peer.stored(subject) == 300
            seconds, count, value_bytes = await peer.consume_pull(subject, 300, 100)
            assert seconds > 0 and count == 300 and value_bytes == 300 * MESSAGE_BYTES
            _, count, _ = await peer.consume_ordered(subject, 300)
            assert count == 300
        finally:
            await peer.close()
        import nats

        client = await nats.connect("nats://127.0.0.1:4222")
        try:
            names = [name async for name in _stream_names(client)]
        finally:
            await client.close()
        return subject.rpartition(".")[0], names

    stream, names = asyncio.run(scenario())
    assert stream not in names, "the peer left its stream behind"


async def _stream_names(client: Any) -> AsyncIterator[str]:
    for info in await client.jetstream().streams_info():
        yield info.config.name


def test_kafka_front_helpers_round_trip(tmp_path: Path) -> None:
    values = payloads(7)
    assert len(values) == len(set(values)) and {len(v) for v in values} == {MESSAGE_BYTES}
    with serve(tmp_path / "served") as served:
        create_topic(served.bootstrap, "smoke")
        assert produce_all(served.bootstrap, "smoke", values, 499) > 0
        assert consume_all(served.bootstrap, "smoke", 500, FAST_READER) > 0
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": served.bootstrap, "enable.idempotence": True})
        latencies = paced_latencies(producer, "smoke", values, 200)
        assert len(latencies) == 200 and all(0 < latency < 30 for latency in latencies)
    assert not (tmp_path / "served").exists(), "serve left its data directory behind"


def test_serve_that_cannot_start_says_what_it_printed(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="exited with"),
        serve(tmp_path / "bad", fsync="sometimes"),
    ):
        pass
    assert not (tmp_path / "bad").exists()


def test_faststream_peer_handles_every_event_and_cleans_up() -> None:
    require_service("Redis", 6379)
    url = "redis://127.0.0.1:6379/0"
    prefix = f"eventyard-test:{uuid.uuid4().hex}:"
    peer = FastStreamRedis(url, prefix)
    events = generate(50)
    try:
        assert peer.handle("one", events, 120, batch=False) > 0
        assert peer.handle("batch", events, 1000, batch=True, max_records=100) > 0
    finally:
        peer.close()
    client = redis.Redis.from_url(url)
    try:
        assert client.keys(f"{prefix}*") == [], "the peer left its streams behind"
    finally:
        client.close()


def test_app_handlers_handle_and_commit_everything(tmp_path: Path) -> None:
    typed = listings(generate(50))
    run = asyncio.run(eventyard_handlers(tmp_path / "throughput", typed, 1000))
    assert run.count == 1000
    assert 0 < run.first <= run.handled <= run.committed
    latencies = asyncio.run(eventyard_latencies(tmp_path / "latency", typed, 2000, 100))
    assert len(latencies) == 100 and all(0 < latency < 5 for latency in latencies)
    assert list(tmp_path.iterdir()) == [], "the app scenarios left their data behind"


@pytest.mark.parametrize("single_process", [True, False], ids=["single-process", "processes"])
def test_demo_latency_times_every_alert_and_cleans_up(tmp_path: Path, single_process: bool) -> None:
    events = market(600)
    assert len(events) == 600 and len(market()) > 10_000
    run = asyncio.run(
        demo_latencies(tmp_path / "demo", events, 2000, single_process=single_process)
    )
    assert run.events == 600
    assert run.latencies and all(0 < latency < 30 for latency in run.latencies)
    assert 0 < run.fed_s <= run.drained_s
    assert run.speed > 0
    assert list(run.stages) == ["feed", "comps", "valuation", "scoring", "matching", "alerts"]
    for i, latency in enumerate(run.latencies):  # the stages' shares add up to the latency
        shares = [times[i] for times in run.stages.values()]
        assert all(share > 0 for share in shares)
        assert sum(shares) == pytest.approx(latency, abs=1e-9)
    assert list(tmp_path.iterdir()) == [], "the demo scenario left its data behind"


def test_redis_latency_peer_times_every_event_and_cleans_up() -> None:
    require_service("Redis", 6379)
    url = "redis://127.0.0.1:6379/0"
    stream = f"eventyard-test:{uuid.uuid4().hex}:latency"
    latencies = redis_latencies(url, stream, generate(20), 2000, 100)
    assert len(latencies) == 100 and all(0 < latency < 5 for latency in latencies)
    client = redis.Redis.from_url(url)
    try:
        assert client.exists(stream) == 0
    finally:
        client.close()


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(100, 0, -1)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([7.0], 0.99) == 7.0


# -- the command ------------------------------------------------------------------------


def test_unknown_scenario_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_quick_run_reports_every_scenario(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", "--workdir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    document = json.loads(result.stdout)
    assert document["quick"] is True
    assert set(document["machine"]) == {
        "cpu",
        "cores",
        "memory",
        "kernel",
        "python",
        "disk",
        "load",
        "speed",
    }
    reported = [scenario["name"] for scenario in document["scenarios"]]
    assert reported == [scenario.name for scenario in SCENARIOS]
    for scenario in document["scenarios"]:
        assert scenario["error"] is None, scenario
        assert scenario["figure"]["value"] > 0 or scenario["name"] == "memory", scenario
        assert scenario["verdict"] in {"pass", "FAIL", "no peer"}
    assert list(tmp_path.iterdir()) == [], "the run left scratch files behind"
