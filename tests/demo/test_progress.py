"""What "caught up" means: every stage's group and every delay tier's group committed to the
end of its topics. A match waiting in the alerts stage's retry tier keeps the run open until
it is due and has been alerted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from eventyard.app import retry_topic
from eventyard.demo.events import DealMatched
from eventyard.demo.pipeline import DONE_GROUPS, STAGE_TOPICS
from eventyard.transports import Outgoing
from tests.demo.test_pipeline import make_pipeline, read_topics, transport_of


def test_every_stage_and_retry_tier_is_counted() -> None:
    for group, topics in STAGE_TOPICS.items():
        assert DONE_GROUPS[group] == topics
        assert DONE_GROUPS[f"{group}.retry.0"] == tuple(
            retry_topic(topic, group, 0) for topic in topics
        )
    assert len(DONE_GROUPS) == 2 * len(STAGE_TOPICS)


@pytest.mark.slow
async def test_a_change_waiting_in_a_retry_tier_is_not_caught_up(tmp_path: Path) -> None:
    pipeline = make_pipeline(tmp_path, single_process=True, speed=0)
    await pipeline.start()
    try:
        await pipeline.wait_ready()
        app = pipeline.feed_app
        assert app is not None
        match = DealMatched(
            BuyBox="first-home",
            Broker="Dana Whitfield",
            ListingKey="LATE-1",
            Score=80.0,
            ListPrice=150_000,
            Estimate=170_000,
            Reasons=["score 80 >= 40"],
            At="2008-05-14T15:30:00Z",
        )
        record = app.record(app.envelope(match, key="first-home/LATE-1"))
        due_ms = int(time.time() * 1000) + 1500
        waiting = Outgoing(
            record.key,
            record.value,
            (*record.headers, ("eventyard-retry-due-ms", str(due_ms).encode())),
        )
        await app.transport.publish(retry_topic("matches", "alerts", 0), [waiting])
        await pipeline.wait_done(poll=0.05)
        assert time.time() * 1000 >= due_ms, "caught up while the match waited in its tier"
        topics = await read_topics(transport_of(pipeline), ["alerts"])
    finally:
        await pipeline.stop()
    assert [r.event.ListingKey for r in topics["alerts"]] == ["LATE-1"]
