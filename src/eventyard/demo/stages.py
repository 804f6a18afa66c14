"""The stages of the deal-sourcing pipeline, each an app with its own consumer group.

Every stage is built by a factory taking a transport, so one definition runs in a worker
process against ``eventyard serve`` (the Kafka transport) and, with ``--single-process``,
next to the others on the embedded broker::

    listings --comps--> comped --valuation--> valued --scoring--> deals --matching--> matches
                                     |                                                   |
                                     +--> models                         alerts <--------+
    deals, matches, alerts --board--> the deal board (SQLite)

- **comps** keeps an index of closed sales (a ``Closed`` change adds its sale) and attaches
  the comparable sales closed before each priced change's time (the ones valued:
  :data:`~eventyard.demo.events.PRICED_CHANGES`); it is the pipeline's entry, so a
  change that cannot be right (:func:`~eventyard.demo.events.listing_problem`: a price of
  0, a closed sale without a price) is dead-lettered there at once with its reason, since
  it does not decode as a ``ListingChanged``;
- **valuation** (:mod:`eventyard.demo.valuing`) values every open listing with the newest
  model trained before its time, retraining in a separate process;
- **scoring** weighs the discount to fair value by the model's uncertainty and the
  motivated-seller signals; **matching** checks every buy-box; **alerts** notifies each
  channel at most once per buy-box, listing and reason; **board** is the read model, one
  SQLite transaction per fetched batch of each topic.

Each stage's state that must survive a restart lives in its topics' history or in SQLite:
comps and valuation rebuild their closed sales from the start of their input topic when
they start (``App.on_start``), and both only ever use sales closed before the event at
hand, so a restarted stage values the redelivered events as it would have the first time;
alerts and board write SQLite in the same transaction as the event id. A stage killed at
any moment resumes with nothing lost and nothing repeated. An alerts stage with a
``group_suffix`` is another channel's (:mod:`eventyard.demo.channels`), with its own policy
file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from eventyard.app import App, Context, Publish, SQLiteDedupeStore
from eventyard.demo.alerts import (
    Alerter,
    AlertPolicy,
    JsonLinesNotifier,
    Notifier,
    TerminalNotifier,
    WebhookNotifier,
    alert_id,
)
from eventyard.demo.board import BoardEvent, DealBoard
from eventyard.demo.buyboxes import BuyBox, matches
from eventyard.demo.comps import CompIndex
from eventyard.demo.events import (
    PRICED_CHANGES,
    AlertSent,
    DealMatched,
    DealScored,
    ListingChanged,
    ListingComped,
    ListingValued,
)
from eventyard.demo.scoring import score
from eventyard.demo.settings import StageSettings
from eventyard.demo.stageapp import RETRY, StageApp, history
from eventyard.errors import ConfigError
from eventyard.transports import Transport

__all__ = [
    "STAGES",
    "alerts_stage",
    "board_stage",
    "build_stage",
    "comps_stage",
    "matching_stage",
    "notifier_for",
    "scoring_stage",
    "valuation_stage",
]


def comps_stage(transport: Transport, settings: StageSettings) -> App:
    """Attaches comps; a batch handler (a fetched batch is published at once). An invalid
    listing never reaches it: :class:`~eventyard.demo.events.ListingChanged` refuses to
    decode, so the framework dead-letters that record alone, with its reason."""
    app = StageApp(transport, "comps")
    index = CompIndex()
    indexed: set[str] = set()

    def add(listing: ListingChanged) -> None:
        if listing.ChangeType == "Closed" and listing.ListingKey not in indexed:
            index.add(listing)
            indexed.add(listing.ListingKey)

    @app.on_start
    async def restore() -> None:
        for listing in await history(transport, "listings", ListingChanged):
            add(listing)  # comps_for only ever uses sales closed before the asked time

    def comped(listing: ListingChanged) -> Publish:
        add(listing)
        found = (
            index.comps_for(listing, listing.ModificationTimestamp)
            if listing.ChangeType in PRICED_CHANGES
            else []
        )
        return Publish(
            "comped", ListingComped(listing=listing, comps=found), key=listing.ListingKey
        )

    @app.subscribe("listings", group="comps", retry=RETRY)
    def attach(batch: list[ListingChanged]) -> list[Publish]:
        return [comped(listing) for listing in batch]

    return app


def valuation_stage(transport: Transport, settings: StageSettings) -> App:
    """The valuation stage (:mod:`eventyard.demo.valuing`), imported when built: only this
    stage needs scikit-learn, and the other stages' worker processes start a second or so
    sooner (and lighter on a shared machine) without importing it."""
    from eventyard.demo.valuing import valuation_stage as build

    return build(transport, settings)


def scoring_stage(transport: Transport, settings: StageSettings) -> App:
    """Scores each valued listing; a batch handler, since scoring is a pure function of the
    event (a batch fails only on a bug, which would fail each event alone too) and a whole
    fetched batch is then published at once."""
    app = StageApp(transport, "scoring")

    @app.subscribe("valued", group="scoring", retry=RETRY)
    def rate(batch: list[ListingValued]) -> list[Publish]:
        return [Publish("deals", score(valued), key=valued.listing.ListingKey) for valued in batch]

    return app


def _matched(deal: DealScored, boxes: Sequence[BuyBox]) -> Iterator[Publish]:
    listing = deal.valued.listing
    for box in boxes:
        reasons = matches(box, deal)
        if reasons:
            matched = DealMatched(
                BuyBox=box.name,
                Broker=box.broker,
                ListingKey=listing.ListingKey,
                Score=deal.Score,
                ListPrice=listing.ListPrice,
                Estimate=deal.valued.Estimate,
                Reasons=reasons,
                At=listing.ModificationTimestamp,
            )
            yield Publish("matches", matched, key=f"{box.name}/{listing.ListingKey}")


def matching_stage(transport: Transport, settings: StageSettings) -> App:
    """Checks each deal against every buy-box; a batch handler for the reason scoring is."""
    app = StageApp(transport, "matching")
    boxes = settings.buyboxes

    @app.subscribe("deals", group="matching", retry=RETRY)
    def match(batch: list[DealScored]) -> list[Publish] | None:
        return [found for deal in batch for found in _matched(deal, boxes)] or None

    return app


_CHANNEL_NAME = re.compile(r"[A-Za-z0-9_-]+")


def notifier_for(channel: str) -> Notifier:
    """The notifier of a channel setting: ``terminal``, ``jsonl:PATH`` or ``webhook:URL``.

    ``NAME=SETTING`` names the channel (its :attr:`AlertSent.Channel`); unnamed channels are
    ``terminal``, ``file`` and ``webhook``. Two channels writing to the ``alerts`` topic need
    different names, since an alert's event id and its board row include the channel.
    """
    name, equals, setting = channel.partition("=")
    if not (equals and _CHANNEL_NAME.fullmatch(name)):
        name, setting = "", channel
    kind, _, target = setting.partition(":")
    if kind == "terminal":
        return TerminalNotifier(name=name or "terminal")
    if kind == "jsonl" and target:
        return JsonLinesNotifier(target, name=name or "file")
    if kind == "webhook" and target:
        return WebhookNotifier(target, name=name or "webhook")
    raise ConfigError(
        f"alert channel {channel!r}: expected terminal, jsonl:PATH or webhook:URL, "
        "optionally named as NAME=..."
    )


def alerts_stage(transport: Transport, settings: StageSettings) -> App:
    app = StageApp(transport, "alerts")
    store = SQLiteDedupeStore(settings.alerts_path)
    policy = AlertPolicy(settings.alerts_path, threshold=settings.alert_threshold)
    alerter = Alerter(policy, [notifier_for(channel) for channel in settings.channels])
    app.closing(store.close)
    app.closing(policy.close)
    for notifier in alerter.notifiers:
        if isinstance(notifier, JsonLinesNotifier):
            app.closing(notifier.close)

    @app.subscribe(
        "matches", group="alerts" + settings.group_suffix, idempotency=store, retry=RETRY
    )
    async def alert(matched: DealMatched, ctx: Context) -> list[Publish] | None:
        sent = await alerter.handle(matched, ctx.event_id)
        return [
            Publish(
                "alerts",
                event,
                key=f"{event.BuyBox}/{event.ListingKey}",
                id=f"{alert_id(event.BuyBox, event.ListingKey, event.Reason)}/{event.Channel}",
            )
            for event in sent
        ] or None

    return app


def _ids(events: list[Any], contexts: list[Context]) -> Iterator[tuple[BoardEvent, str]]:
    return zip(events, (ctx.event_id for ctx in contexts), strict=True)


BOARD_INTERVAL = 0.25
"""Seconds between two batches of each board subscription: the board is a read model a
broker looks at, for which a quarter of a second is fresh, and pacing it makes about four
SQLite transactions and a few fetches a second per topic instead of one per fetched scrap
(at 1,000 listing events a second, that was a tenth of the pipeline's CPU)."""


def board_stage(transport: Transport, settings: StageSettings) -> App:
    """The deal board's app: each subscription applies a paced batch in one transaction.

    A batch is all or nothing (:meth:`DealBoard.apply_many`), and replaying it after a crash
    before the commit changes nothing, since every event id is claimed in that transaction.
    """
    app = StageApp(transport, "board")
    board = DealBoard(settings.board_path)
    app.closing(board.close)

    @app.subscribe("deals", group="board", retry=RETRY, batch_interval=BOARD_INTERVAL)
    def deals(batch: list[DealScored], contexts: list[Context]) -> None:
        board.apply_many(_ids(batch, contexts))

    @app.subscribe("matches", group="board", retry=RETRY, batch_interval=BOARD_INTERVAL)
    def matched(batch: list[DealMatched], contexts: list[Context]) -> None:
        board.apply_many(_ids(batch, contexts))

    @app.subscribe("alerts", group="board", retry=RETRY, batch_interval=BOARD_INTERVAL)
    def alerted(batch: list[AlertSent], contexts: list[Context]) -> None:
        board.apply_many(_ids(batch, contexts))

    return app


STAGES: dict[str, Callable[[Transport, StageSettings], App]] = {
    "comps": comps_stage,
    "valuation": valuation_stage,
    "scoring": scoring_stage,
    "matching": matching_stage,
    "alerts": alerts_stage,
    "board": board_stage,
}


def build_stage(name: str, transport: Transport, settings: StageSettings) -> App:
    """The app of stage ``name`` on ``transport``."""
    return STAGES[name](transport, settings)
