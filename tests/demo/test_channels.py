"""A second alert channel added later gets the alerts of the matches since a chosen time.

:func:`eventyard.demo.channels.add_alert_channel` positions a new group on ``matches`` by
record timestamp and runs an alerts stage for the channel (in this process on the embedded
broker, as a worker process of its own with worker processes); what the channel sends must be
exactly a fresh :class:`~eventyard.demo.alerts.AlertPolicy` replayed over the matches
published at or after that time, and nothing of the matches before it. Checked on the
embedded broker (``--single-process``) and on ``eventyard serve`` with worker processes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from eventyard.demo.channels import add_alert_channel
from eventyard.demo.pipeline import PARTITIONS, feed
from eventyard.demo.stages import notifier_for
from eventyard.errors import ConfigError
from tests.demo.test_pipeline import (
    board_snapshot,
    jsonl_ids,
    make_pipeline,
    market,
    published_alerts,
    read_topics,
    replay_alerts,
    transport_of,
)


def test_a_channel_setting_may_name_the_channel(tmp_path: Path) -> None:
    assert notifier_for(f"late=jsonl:{tmp_path / 'a.jsonl'}").name == "late"
    assert notifier_for(f"jsonl:{tmp_path / 'a.jsonl'}").name == "file"
    assert notifier_for("hook=webhook:http://127.0.0.1:9/x?a=b").name == "hook"
    assert notifier_for("webhook:http://127.0.0.1:9/x?a=b").name == "webhook"
    with pytest.raises(ConfigError, match="NAME="):
        notifier_for("late=carrier-pigeon")


def first_at_or_after(records: list, since_ms: int) -> dict[int, int]:
    """Per partition of ``matches``, the first offset whose timestamp is at or after
    ``since_ms``, else the end: where the channel's group must start."""
    out = {}
    for partition in range(PARTITIONS):
        held = [r for r in records if r.partition == partition]
        later = [r.offset for r in held if r.timestamp >= since_ms]
        out[partition] = min(later) if later else max((r.offset + 1 for r in held), default=0)
    return out


def check_channel(
    root: Path, topics: dict[str, list], since_ms: int, name: str, file: Path
) -> set[tuple]:
    """The channel's alerts are the policy replayed over the matches since ``since_ms``."""
    since = [r for r in topics["matches"] if r.timestamp >= since_ms]
    before = [r for r in topics["matches"] if r.timestamp < since_ms]
    assert since and before, "the chosen time does not split the matches"
    expected = replay_alerts(root / f"replay-{name}.db", since, name)
    sent = published_alerts(topics["alerts"], name)
    assert set(sent) == expected and len(sent) == len(expected)
    assert expected, "the channel got no alert at all"
    # none before: every alert is about a match published at or after since_ms
    since_matches = {(r.event.BuyBox, r.event.ListingKey, r.event.At) for r in since}
    assert {(box, key, at) for _, box, key, _, _, at in sent} <= since_matches
    # ... while the first channel did alert on matches before it
    first = {(box, key, at) for _, box, key, _, _, at in published_alerts(topics["alerts"], "file")}
    assert first - since_matches
    ids = jsonl_ids(file)
    assert len(ids) == len(set(ids)) == len(expected)
    return expected


@pytest.mark.slow
async def test_a_channel_added_later_replays_from_a_time_embedded(tmp_path: Path) -> None:
    events = market()
    thirds = len(events) // 3
    pipeline = make_pipeline(tmp_path, single_process=True, speed=0)
    file = tmp_path / "late.jsonl"
    await pipeline.start()
    try:
        assert pipeline.feed_app is not None
        await feed(pipeline.feed_app, events[: thirds * 2], speed=0)
        await pipeline.wait_done()
        # the choice of time: a match in the middle of what was published so far
        so_far = await read_topics(transport_of(pipeline), ["matches"])
        since_ms = sorted(r.timestamp for r in so_far["matches"])[len(so_far["matches"]) // 2]
        channel = await add_alert_channel(pipeline, "late", f"jsonl:{file}", since_ms)
        try:
            assert channel.group == "alerts-late" and not channel.resumed
            assert channel.app is not None and channel.worker is None  # in this process
            assert channel.positions == first_at_or_after(so_far["matches"], since_ms)
            await feed(pipeline.feed_app, events[thirds * 2 :], speed=0)  # and then live
            await pipeline.wait_done()
            await channel.wait_caught_up()
            await pipeline.wait_done()  # the board has the new channel's alerts
        finally:
            await channel.stop()
        again = await add_alert_channel(pipeline, "late", f"jsonl:{file}", 0)
        try:  # added again: it resumes where it stopped, since_ms is not applied again
            assert again.resumed and again.positions == {}
            await again.wait_caught_up()
        finally:
            await again.stop()
        topics = await read_topics(transport_of(pipeline), ["matches", "alerts"])
    finally:
        await pipeline.stop()
    expected = check_channel(tmp_path, topics, since_ms, "late", file)
    board = board_snapshot(tmp_path / "work" / "board.db")
    assert {row for row in board["board_alerts"] if row[0] == "late"} == expected
    assert (tmp_path / "work" / "alerts-late.db").exists()


@pytest.mark.slow
async def test_a_channel_added_later_replays_from_a_time_on_serve(tmp_path: Path) -> None:
    pipeline = make_pipeline(tmp_path, speed=60.0)  # paced: the matches spread over seconds
    file = tmp_path / "backoffice.jsonl"
    await pipeline.start()
    try:
        assert pipeline.feed_app is not None
        await feed(pipeline.feed_app, market(), speed=60.0)
        await pipeline.wait_done()
        matched = (await read_topics(transport_of(pipeline), ["matches"]))["matches"]
        since_ms = sorted(r.timestamp for r in matched)[len(matched) // 2]
        started = time.monotonic()
        channel = await add_alert_channel(pipeline, "backoffice", f"jsonl:{file}", since_ms)
        try:
            assert not channel.resumed
            # a worker process of its own, like every stage in processes mode
            assert channel.app is None and channel.worker == "alerts-backoffice"
            assert "alerts-backoffice" in pipeline.worker_pids()
            assert channel.positions == first_at_or_after(matched, since_ms)
            await channel.wait_caught_up()
            await pipeline.wait_done()
        finally:
            await channel.stop()
        assert "alerts-backoffice" not in pipeline.worker_pids()
        assert time.monotonic() - started < 30
        topics = await read_topics(transport_of(pipeline), ["matches", "alerts"])
    finally:
        await pipeline.stop()
    expected = check_channel(tmp_path, topics, since_ms, "backoffice", file)
    board = board_snapshot(tmp_path / "work" / "board.db")
    assert {row for row in board["board_alerts"] if row[0] == "backoffice"} == expected


async def test_a_channel_name_must_be_a_word(tmp_path: Path) -> None:
    pipeline = make_pipeline(tmp_path, single_process=True)
    with pytest.raises(ConfigError, match="channel name"):
        await add_alert_channel(pipeline, "no spaces", "terminal", 0)
    with pytest.raises(ConfigError, match="start the pipeline"):
        await add_alert_channel(pipeline, "late", "terminal", 0)
