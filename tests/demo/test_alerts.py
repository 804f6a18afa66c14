"""Alerts: the policy (one per box, listing and reason; price moves re-alert; state survives a
restart), the channels (terminal, JSON-lines file, a real webhook server) and the Alerter's
exactly-once delivery across a failing channel and a restart."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import pytest
from rich.console import Console

from eventyard.app import App, Context, Publish, RetryPolicy, SQLiteDedupeStore
from eventyard.demo.alerts import (
    NEW_MATCH,
    Alerter,
    AlertPolicy,
    DeliveryError,
    JsonLinesNotifier,
    TerminalNotifier,
    WebhookNotifier,
    alert_id,
    alert_payload,
)
from eventyard.demo.events import DEMO_REGISTRY, AlertSent, DealMatched
from eventyard.errors import ConfigError
from eventyard.testing import AppHarness
from eventyard.transports import MemoryTransport

MATCH = DealMatched(
    BuyBox="first-home",
    Broker="Dana Ruiz",
    ListingKey="AMES-0007",
    Score=61.5,
    ListPrice=200_000,
    Estimate=226_000,
    Reasons=["score 62 (min 35)", "$200,000 (max $210,000)"],
    At="2009-04-02T15:00:00Z",
)


def matched(price: int = 200_000, at: str = "2009-04-02T15:00:00Z", **changes: Any) -> DealMatched:
    return msgspec.structs.replace(MATCH, ListPrice=price, At=at, **changes)


def sent(channel: str = "file", reason: str = NEW_MATCH, match: DealMatched = MATCH) -> AlertSent:
    return AlertSent(
        Channel=channel,
        BuyBox=match.BuyBox,
        ListingKey=match.ListingKey,
        Reason=reason,
        ListPrice=match.ListPrice,
        At=match.At,
    )


@pytest.fixture
def policy(tmp_path: Path) -> Iterator[AlertPolicy]:
    with AlertPolicy(tmp_path / "alerts.db") as opened:
        yield opened


# -- the policy ----------------------------------------------------------------------------------


def test_the_first_match_alerts_and_a_repeat_does_not(policy: AlertPolicy) -> None:
    assert policy.claim(matched(), "e1") == NEW_MATCH
    assert policy.claim(matched(), "e2") is None  # the same fact published again
    assert policy.claim(matched(at="2009-05-01T15:00:00Z"), "e3") is None  # re-scored
    other_box = matched(BuyBox="rental-income")
    assert policy.claim(other_box, "e4") == NEW_MATCH
    assert policy.claim(matched(ListingKey="AMES-0008"), "e5") == NEW_MATCH
    assert policy.alerted() == 3


def test_a_price_move_past_the_threshold_re_alerts(policy: AlertPolicy) -> None:
    assert policy.claim(matched(200_000), "e1") == NEW_MATCH
    assert policy.claim(matched(195_000), "e2") is None  # -2.5%: within 3%
    assert policy.claim(matched(194_000), "e3") is None  # -3.0%: not more than 3%
    assert policy.claim(matched(193_000), "e4") == "price cut 4% to $193,000"  # -3.5%
    assert policy.claim(matched(190_000), "e4b") is None  # -1.6% from the last alert
    assert policy.claim(matched(180_000), "e5") == "price cut 7% to $180,000"
    assert policy.claim(matched(200_000), "e6") == "price up 11% to $200,000"


def test_the_threshold_is_strict_and_configurable(tmp_path: Path) -> None:
    with AlertPolicy(tmp_path / "a.db", threshold=0.10) as loose:
        assert loose.claim(matched(200_000), "e1") == NEW_MATCH
        assert loose.claim(matched(180_000), "e2") is None  # exactly 10%: not more
        assert loose.claim(matched(179_000), "e3") == "price cut 10% to $179,000"
    with pytest.raises(ConfigError, match="alert threshold"):
        AlertPolicy(tmp_path / "b.db", threshold=1.5)


def test_one_alert_per_box_listing_and_reason(policy: AlertPolicy) -> None:
    assert policy.claim(matched(200_000), "e1") == NEW_MATCH
    assert policy.claim(matched(180_000), "e2") == "price cut 10% to $180,000"
    assert policy.claim(matched(200_000), "e3") == "price up 11% to $200,000"
    # Back to $180,000: the same reason as before, so no second alert for it.
    assert policy.claim(matched(180_000), "e4") is None


def test_a_redelivered_event_gets_its_first_decision_back(policy: AlertPolicy) -> None:
    assert policy.claim(matched(200_000), "e1") == NEW_MATCH
    assert policy.claim(matched(200_000), "e1") == NEW_MATCH  # not "None: already alerted"
    assert policy.claim(matched(199_000), "e2") is None
    assert policy.claim(matched(199_000), "e2") is None
    assert policy.alerted() == 1


def test_decide_reads_and_record_writes(policy: AlertPolicy) -> None:
    assert policy.decide(matched()) == NEW_MATCH
    assert policy.decide(matched()) == NEW_MATCH  # nothing recorded yet
    policy.record(matched(), NEW_MATCH)
    assert policy.decide(matched()) is None
    assert policy.decide(matched(150_000)) == "price cut 25% to $150,000"


def test_the_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "alerts.db"
    with AlertPolicy(path) as first:
        assert first.claim(matched(200_000), "e1") == NEW_MATCH
        first.mark_delivered(sent())
    with AlertPolicy(path) as again:
        assert again.claim(matched(200_000), "e2") is None
        assert again.claim(matched(200_000), "e1") == NEW_MATCH
        assert again.delivered(sent())
        assert not again.delivered(sent("webhook"))
        assert again.claim(matched(190_000), "e3") == "price cut 5% to $190,000"


def test_alert_ids_are_stable_per_box_listing_and_reason() -> None:
    assert alert_id("a", "L1", NEW_MATCH) == alert_id("a", "L1", NEW_MATCH)
    assert len({alert_id("a", "L1", "r"), alert_id("b", "L1", "r"), alert_id("a", "L1", "s")}) == 3
    payload = alert_payload(MATCH, sent())
    assert payload["AlertId"] == alert_id("first-home", "AMES-0007", NEW_MATCH)
    assert payload["Broker"] == "Dana Ruiz"
    assert payload["Reasons"] == MATCH.Reasons


# -- the channels --------------------------------------------------------------------------------


async def test_terminal_notifier_prints_one_line() -> None:
    out = io.StringIO()
    notifier = TerminalNotifier(Console(file=out, width=300, color_system=None))
    assert notifier.name == "terminal"
    await notifier.send(matched(Broker="Dana [admin]"), sent("terminal"))
    line = out.getvalue()
    assert line.count("\n") == 1
    assert "ALERT 2009-04-02 first-home (Dana [admin]) AMES-0007 $200,000 est $226,000" in line
    assert "score 62: new match (score 62 (min 35); $200,000 (max $210,000))" in line


async def test_json_lines_notifier_appends_and_skips_ids_it_holds(tmp_path: Path) -> None:
    path = tmp_path / "out" / "alerts.jsonl"
    notifier = JsonLinesNotifier(path)
    await notifier.send(MATCH, sent())
    await notifier.send(MATCH, sent())  # a retry after a crash: the same alert id
    cut = matched(180_000)
    await notifier.send(cut, sent(reason="price cut 10% to $180,000", match=cut))
    notifier.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [d["Reason"] for d in lines] == [NEW_MATCH, "price cut 10% to $180,000"]
    assert lines[0] == alert_payload(MATCH, sent())

    # A crash mid-line leaves a torn last line; a restarted notifier removes it and goes on.
    with path.open("a") as file:
        file.write('{"AlertId": "torn')
    again = JsonLinesNotifier(path)
    await again.send(MATCH, sent())  # already in the file
    other = matched(ListingKey="AMES-0009")
    await again.send(other, sent(match=other))
    again.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [d["ListingKey"] for d in lines] == ["AMES-0007", "AMES-0007", "AMES-0009"]


async def test_json_lines_notifier_raises_when_it_cannot_write(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(DeliveryError, match="alert file"):
        await JsonLinesNotifier(tmp_path / "dir").send(MATCH, sent())


class Hook:
    """A real HTTP server in a thread, answering each POST with the next queued status."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append((dict(self.headers), json.loads(body)))
                time.sleep(hook.delay)
                status = hook.statuses.pop(0) if hook.statuses else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Hook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def hook() -> Iterator[Hook]:
    with Hook() as running:
        yield running


async def test_webhook_posts_json_with_an_idempotency_key(hook: Hook) -> None:
    notifier = WebhookNotifier(hook.url, timeout=5)
    assert notifier.name == "webhook"
    await notifier.send(MATCH, sent("webhook"))
    [(headers, body)] = hook.received
    assert headers["Content-Type"] == "application/json"
    assert headers["Idempotency-Key"] == alert_id("first-home", "AMES-0007", NEW_MATCH)
    assert body == alert_payload(MATCH, sent("webhook"))


async def test_webhook_http_errors_raise_so_the_framework_retries(hook: Hook) -> None:
    hook.statuses = [500, 404]
    notifier = WebhookNotifier(hook.url)
    with pytest.raises(DeliveryError, match=r"webhook http://127\.0\.0\.1:\d+/alerts: HTTP 500"):
        await notifier.send(MATCH, sent("webhook"))
    with pytest.raises(DeliveryError, match="HTTP 404"):
        await notifier.send(MATCH, sent("webhook"))
    await notifier.send(MATCH, sent("webhook"))
    assert len(hook.received) == 3


async def test_webhook_timeout_and_refused_connection_raise(hook: Hook) -> None:
    hook.delay = 1.0
    with pytest.raises(DeliveryError, match=r"no answer in 0\.2s|timed out"):
        await WebhookNotifier(hook.url, timeout=0.2).send(MATCH, sent("webhook"))
    hook.delay = 0.0
    closed = Hook()  # bound, never serving, then closed: its port refuses
    url = closed.url
    closed.server.server_close()
    with pytest.raises(DeliveryError, match="webhook"):
        await WebhookNotifier(url, timeout=2).send(MATCH, sent("webhook"))


def test_webhook_refuses_a_bad_url_or_timeout() -> None:
    with pytest.raises(ConfigError, match="webhook URL"):
        WebhookNotifier("ftp://example.com/")
    with pytest.raises(ConfigError, match="timeout"):
        WebhookNotifier("http://example.com/", timeout=0)


# -- the whole sequence --------------------------------------------------------------------------


class Flaky:
    """A channel that fails its first ``failures`` sends, recording the ones that got through."""

    def __init__(self, name: str, failures: int = 0) -> None:
        self.name = name
        self.failures = failures
        self.delivered: list[tuple[str, str]] = []

    async def send(self, matched: DealMatched, alert: AlertSent) -> None:
        if self.failures:
            self.failures -= 1
            raise DeliveryError(f"{self.name} is down")
        self.delivered.append((alert.ListingKey, alert.Reason))


async def test_alerter_retries_only_the_channels_that_failed(policy: AlertPolicy) -> None:
    file, hook_ = Flaky("file"), Flaky("webhook", failures=1)
    alerter = Alerter(policy, [file, hook_])
    with pytest.raises(DeliveryError, match="webhook is down"):
        await alerter.handle(MATCH, "e1")
    assert file.delivered == [("AMES-0007", NEW_MATCH)]
    # The framework retries the same event: the file is not written twice.
    alerts = await alerter.handle(MATCH, "e1")
    assert [a.Channel for a in alerts] == ["file", "webhook"]
    assert {a.Reason for a in alerts} == {NEW_MATCH}
    assert file.delivered == hook_.delivered == [("AMES-0007", NEW_MATCH)]
    # A different event with the same fact: nothing.
    assert await alerter.handle(matched(), "e2") == []


async def test_alerter_after_a_restart_neither_repeats_nor_drops(tmp_path: Path) -> None:
    path = tmp_path / "alerts.db"
    out = tmp_path / "alerts.jsonl"
    stream = [
        (matched(200_000, "2009-04-02T15:00:00Z"), "e1"),
        (matched(198_000, "2009-04-20T15:00:00Z"), "e2"),
        (matched(185_000, "2009-05-02T15:00:00Z"), "e3"),
        (matched(185_000, "2009-05-02T15:00:00Z", BuyBox="rental-income"), "e4"),
    ]
    with AlertPolicy(path) as first:
        file = JsonLinesNotifier(out)
        alerter = Alerter(first, [file])
        for event, event_id in stream[:3]:
            await alerter.handle(event, event_id)
        file.close()
    # Killed before e3's offset was committed: e3 is redelivered, then e4 arrives.
    with AlertPolicy(path) as second:
        file = JsonLinesNotifier(out)
        alerter = Alerter(second, [file])
        redelivered = await alerter.handle(*stream[2])
        assert [a.Reason for a in redelivered] == ["price cut 8% to $185,000"]
        await alerter.handle(*stream[3])
        file.close()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(d["BuyBox"], d["Reason"]) for d in lines] == [
        ("first-home", NEW_MATCH),
        ("first-home", "price cut 8% to $185,000"),
        ("rental-income", NEW_MATCH),
    ]


async def test_a_channel_added_later_gets_the_alerts_it_missed(tmp_path: Path) -> None:
    with AlertPolicy(tmp_path / "alerts.db") as policy:
        old = Flaky("file")
        await Alerter(policy, [old]).handle(MATCH, "e1")
        late = Flaky("webhook")
        replayed = await Alerter(policy, [old, late]).handle(MATCH, "e1")  # a replay
        assert [a.Channel for a in replayed] == ["file", "webhook"]
        assert old.delivered == late.delivered == [("AMES-0007", NEW_MATCH)]


async def test_in_an_app_a_duplicate_and_a_retry_still_alert_once(tmp_path: Path) -> None:
    path = tmp_path / "alerts.db"
    store = SQLiteDedupeStore(path)
    policy = AlertPolicy(path)
    file, webhook = Flaky("file"), Flaky("webhook", failures=1)
    alerter = Alerter(policy, [file, webhook])
    app = App(MemoryTransport(), source="test-alerts", registry=DEMO_REGISTRY)

    @app.subscribe(
        "matches",
        group="alerts",
        idempotency=store,
        retry=RetryPolicy(max_attempts=3, initial_delay=0.01),
    )
    async def alert(event: DealMatched, ctx: Context) -> list[Publish]:
        sent = await alerter.handle(event, ctx.event_id)
        return [Publish("alerts", a, key=f"{a.BuyBox}/{a.ListingKey}") for a in sent]

    async with AppHarness(app) as harness:
        record = harness.app.record(harness.app.envelope(MATCH, key="first-home/AMES-0007"))
        await harness.transport.ensure_topic("matches")
        await harness.transport.publish("matches", [record, record])  # a duplicate
        await harness.publish("matches", matched(), key="first-home/AMES-0007")  # same fact
        await harness.settle()
        published = await harness.read("alerts")
    await store.close()
    policy.close()
    assert file.delivered == webhook.delivered == [("AMES-0007", NEW_MATCH)]
    assert sorted(e.type for e in published) == ["deal.alert.sent"] * 2
