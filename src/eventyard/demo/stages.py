"""The stages of the deal-sourcing pipeline, each an app with its own consumer group.

Every stage is built by a factory taking a transport, so one definition runs in a worker
process against ``eventyard serve`` (the Kafka transport) and, with ``--single-process``,
next to the others on the embedded broker::

    listings --comps--> comped --valuation--> valued --scoring--> deals --matching--> matches
                                     |                                                   |
                                     +--> models                         alerts <--------+
    deals, matches, alerts --board--> the deal board (SQLite)

- **comps** keeps an index of closed sales (a ``Closed`` change adds its sale) and attaches
  the comparable sales closed before each listing's time; it is the pipeline's entry, so a
  change that decodes but cannot be right (:func:`listing_problem`: a price of 0, a closed
  sale without a price) is dead-lettered at once with its reason, like an undecodable one;
- **valuation** trains the model only on sales closed before the event's time, retrains in a
  worker thread every ``retrain_every`` closed sales (publishing a ``ModelTrained`` event)
  and values every open listing with the newest model (before the first model, with the
  comps' median price per square foot, as version 0);
- **scoring** weighs the discount to fair value by the model's uncertainty and the
  motivated-seller signals; **matching** checks every buy-box; **alerts** notifies each
  channel at most once per buy-box, listing and reason; **board** is the read model.

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

import asyncio
import bisect
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from eventyard.app import App, Context, Publish, RetryPolicy, SQLiteDedupeStore
from eventyard.demo.alerts import (
    Alerter,
    AlertPolicy,
    JsonLinesNotifier,
    Notifier,
    TerminalNotifier,
    WebhookNotifier,
    alert_id,
)
from eventyard.demo.board import DealBoard
from eventyard.demo.buyboxes import BuyBox, matches
from eventyard.demo.comps import CompIndex
from eventyard.demo.events import (
    CHANGE_TYPES,
    DEMO_REGISTRY,
    STANDARD_STATUSES,
    AlertSent,
    DealMatched,
    DealScored,
    ListingChanged,
    ListingComped,
    ListingValued,
    ModelTrained,
)
from eventyard.demo.scoring import score
from eventyard.demo.valuation import Valuer
from eventyard.errors import ConfigError, EventDecodeError, EventyardError
from eventyard.events import decode
from eventyard.transports import Transport

__all__ = ["STAGES", "InvalidListing", "StageSettings", "build_stage", "listing_problem"]

log = logging.getLogger("eventyard.demo")

T = TypeVar("T")

TOPICS = ("listings", "comped", "valued", "models", "deals", "matches", "alerts")


@dataclass(frozen=True)
class StageSettings:
    """What the stages need beyond a transport (the same in every process of one run)."""

    work_dir: Path
    buyboxes: tuple[BuyBox, ...]
    channels: tuple[str, ...] = ()
    """Alert channels: ``terminal``, ``jsonl:PATH``, ``webhook:URL``."""
    retrain_every: int = 200
    min_training_sales: int = 300
    seed: int = 7
    alert_threshold: float = 0.03
    group_suffix: str = ""

    @property
    def board_path(self) -> Path:
        return self.work_dir / "board.db"

    @property
    def alerts_path(self) -> Path:
        """The alerts stage's policy and dedupe file, one per group (``alerts<suffix>.db``)."""
        return self.work_dir / f"alerts{self.group_suffix}.db"


RETRY = RetryPolicy(max_attempts=4, initial_delay=0.2, tiers=(2.0,))
"""Every stage's retry policy: short retries in place, then one two-second delay tier (one
retry worker per subscription rather than three)."""


class StageApp(App):
    """An :class:`App` that also closes what its handlers opened (files, SQLite) on stop.

    In a worker process the exit closes them anyway; in ``--single-process`` mode, or for
    an alert channel added to a running pipeline, the process goes on after the stage stops.
    """

    def __init__(self, transport: Transport, name: str) -> None:
        super().__init__(transport, source=f"eventyard-demo/{name}", registry=DEMO_REGISTRY)
        self._closers: list[Callable[[], Awaitable[None] | None]] = []

    def closing(self, closer: Callable[[], Awaitable[None] | None]) -> None:
        """Call ``closer`` (sync or async, idempotent) after the app stops."""
        self._closers.append(closer)

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            for closer in reversed(self._closers):
                result = closer()
                if result is not None:
                    await result


def _app(transport: Transport, name: str) -> StageApp:
    return StageApp(transport, name)


async def history(transport: Transport, topic: str, event_type: type[T]) -> list[T]:
    """The ``event_type`` events on ``topic`` written before now (to rebuild a stage's state).

    Read by a throwaway group, so the stage's own committed offsets are untouched. Records
    written from now on are left to the stage's subscription: reading until the topic runs
    dry would race a feed that is already writing, and hold the stage back as long as it
    writes. Records of other types and undecodable ones (the stage dead-letters those) are
    skipped.
    """
    await transport.ensure_topic(topic)
    until_ms = int(time.time() * 1000)
    decoder = DEMO_REGISTRY.decoder(event_type)
    receiver = transport.receiver([topic], f"eventyard-demo-restore-{uuid.uuid4().hex[:12]}")
    out: list[T] = []
    done: set[tuple[str, int]] = set()
    async with receiver:
        deadline = time.monotonic() + 30.0
        while not receiver.settled() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        while True:
            batch = await receiver.fetch(0.1, 10_000)
            if not batch:
                break
            for message in batch:
                tp = (message.topic, message.partition)
                if message.timestamp >= until_ms:
                    done.add(tp)
                if tp in done:
                    continue
                try:
                    envelope = decode(message.value, message.headers, message.key)
                    if envelope is not None:
                        out.append(decoder(envelope))
                except EventDecodeError:
                    continue
            assigned = receiver.assignment()
            if assigned and done >= assigned:
                break
    return out


class InvalidListing(EventyardError):
    """A listing change that decodes but cannot be right (a price of 0, a sale without a
    price); the comps stage dead-letters it at once rather than retrying it."""


def listing_problem(listing: ListingChanged) -> str | None:
    """Why ``listing`` cannot enter the pipeline (one line naming the field), or None.

    The checks :func:`eventyard.demo.data.load_listings` makes on a user's rows, made again
    at the pipeline's entry: a record on ``listings`` may come from anywhere (a rejected row
    the feed passes on, ``eventyard produce``), and one bad closed sale in the comps index or
    the training set would fail every later valuation.
    """
    if listing.ChangeType not in CHANGE_TYPES:
        return f"ChangeType: not a RESO change type: {listing.ChangeType!r}"
    if listing.StandardStatus not in STANDARD_STATUSES:
        return f"StandardStatus: not a RESO status: {listing.StandardStatus!r}"
    try:
        datetime.fromisoformat(listing.ModificationTimestamp.replace("Z", "+00:00"))
    except ValueError:
        return f"ModificationTimestamp: not an RFC 3339 time: {listing.ModificationTimestamp!r}"
    positive = (
        ("ListPrice", listing.ListPrice),
        ("OriginalListPrice", listing.OriginalListPrice),
        ("LivingArea", listing.LivingArea),
    )
    for name, value in positive:
        if not value > 0:
            return f"{name}: must be positive: {value}"
    if listing.BedroomsTotal < 0:
        return f"BedroomsTotal: must not be negative: {listing.BedroomsTotal}"
    if not -90 <= listing.Latitude <= 90 or not -180 <= listing.Longitude <= 180:
        return f"Latitude, Longitude: not a position: {listing.Latitude}, {listing.Longitude}"
    if listing.ClosePrice is not None and listing.ClosePrice <= 0:
        return f"ClosePrice: must be positive: {listing.ClosePrice}"
    if listing.ChangeType == "Closed" and (listing.ClosePrice is None or not listing.CloseDate):
        return "ClosePrice, CloseDate: required on a Closed change"
    return None


COMPS_RETRY = replace(RETRY, give_up_on=(InvalidListing,))


def comps_stage(transport: Transport, settings: StageSettings) -> App:
    app = _app(transport, "comps")
    index = CompIndex()
    indexed: set[str] = set()

    def add(listing: ListingChanged) -> None:
        if listing.ChangeType == "Closed" and listing.ListingKey not in indexed:
            index.add(listing)
            indexed.add(listing.ListingKey)

    @app.on_start
    async def restore() -> None:
        for listing in await history(transport, "listings", ListingChanged):
            if listing_problem(listing) is None:  # the invalid ones were dead-lettered
                add(listing)  # comps_for only ever uses sales closed before the asked time

    @app.subscribe("listings", group="comps", retry=COMPS_RETRY)
    def attach(listing: ListingChanged) -> Publish:
        problem = listing_problem(listing)
        if problem is not None:
            raise InvalidListing(f"{listing.ListingKey}: {problem}")
        add(listing)
        found = index.comps_for(listing, listing.ModificationTimestamp)
        return Publish(
            "comped", ListingComped(listing=listing, comps=found), key=listing.ListingKey
        )

    return app


class _Models:
    """The valuation models of a stage, each fitted on the sales closed before its time.

    An event is valued with the newest model whose training time is not after the event's
    own: the partitions of ``comped`` interleave, so a model trained at one listing's time
    may be newer than the next listing from another partition, and using it would value that
    listing with sales it could not have known (look-ahead). Fitting runs in a worker thread
    on a fresh :class:`Valuer`, in the background, so handling goes on meanwhile.
    """

    KEEP = 4

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._times: list[str] = []
        self._valuers: list[Valuer] = []
        self._versions: list[int] = []
        self.version = 0
        self.training: asyncio.Future[None] | None = None

    def pick(self, as_of: str) -> tuple[Valuer, int] | None:
        index = bisect.bisect_right(self._times, as_of) - 1
        if index < 0:
            return None
        return self._valuers[index], self._versions[index]

    async def fit(self, sales: list[ListingChanged], as_of: str) -> ModelTrained:
        valuer = Valuer(seed=self.seed)
        await asyncio.to_thread(valuer.fit, sales)
        self.version += 1
        index = bisect.bisect_right(self._times, as_of)
        self._times.insert(index, as_of)
        self._valuers.insert(index, valuer)
        self._versions.insert(index, self.version)
        if len(self._times) > self.KEEP:
            del self._times[0], self._valuers[0], self._versions[0]
        return ModelTrained(
            ModelVersion=self.version, TrainedAsOf=as_of, Sales=len(sales), Mdape=None
        )


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("valuation: retraining failed (the previous model stays): %s", task.exception())


def valuation_stage(transport: Transport, settings: StageSettings) -> App:
    app = _app(transport, "valuation")
    models = _Models(settings.seed)
    closed: dict[str, ListingChanged] = {}
    close_times: list[str] = []
    """Sorted close times: how many sales closed before a time is one bisection, since the
    partitions of ``comped`` interleave and closed sales arrive out of market-time order."""
    trained = {"count": 0}

    def add(listing: ListingChanged) -> None:
        if listing.ListingKey not in closed:
            closed[listing.ListingKey] = listing
            bisect.insort(close_times, listing.ModificationTimestamp)

    @app.on_start
    async def restore() -> None:
        for comped in await history(transport, "comped", ListingComped):
            if comped.listing.ChangeType == "Closed":
                add(comped.listing)

    async def retrain(as_of: str) -> None:
        """Fit on the sales closed before ``as_of`` (no look-ahead), then announce it."""
        sales = [sale for sale in closed.values() if sale.ModificationTimestamp < as_of]
        model = await models.fit(sales, as_of)
        await app.publish("models", model, key="model")

    def maybe_retrain(as_of: str) -> None:
        if models.training is not None and not models.training.done():
            return
        eligible = bisect.bisect_left(close_times, as_of)
        if eligible < settings.min_training_sales:
            return
        if models.version and eligible - trained["count"] < settings.retrain_every:
            return
        trained["count"] = eligible
        models.training = asyncio.ensure_future(retrain(as_of))
        models.training.add_done_callback(_log_failure)

    @app.subscribe("comped", group="valuation", retry=RETRY)
    def value(comped: ListingComped) -> Publish | None:
        listing = comped.listing
        if listing.ChangeType == "Closed":
            add(listing)
            return None
        if listing.ChangeType in ("Pending", "Withdrawn"):
            return None
        maybe_retrain(listing.ModificationTimestamp)
        picked = models.pick(listing.ModificationTimestamp)
        if picked is None:
            estimate = comped_estimate(comped)
            if estimate is None:
                return None
            low, high, version = round(estimate * 0.85), round(estimate * 1.15), 0
        else:
            valuer, version = picked
            valuation = valuer.predict(listing)
            estimate, low, high = valuation.estimate, valuation.low, valuation.high
        valued = ListingValued(
            listing=listing,
            comps=comped.comps,
            Estimate=int(estimate),
            Low=int(low),
            High=int(high),
            ModelVersion=version,
        )
        return Publish("valued", valued, key=listing.ListingKey)

    return app


def comped_estimate(comped: ListingComped) -> float | None:
    """The comps' median price per square foot times the listing's living area."""
    rates = sorted(c.ClosePrice / c.LivingArea for c in comped.comps if c.LivingArea > 0)
    if not rates or comped.listing.LivingArea <= 0:
        return None
    return rates[len(rates) // 2] * comped.listing.LivingArea


def scoring_stage(transport: Transport, settings: StageSettings) -> App:
    app = _app(transport, "scoring")

    @app.subscribe("valued", group="scoring", retry=RETRY)
    def rate(valued: ListingValued) -> Publish:
        return Publish("deals", score(valued), key=valued.listing.ListingKey)

    return app


def matching_stage(transport: Transport, settings: StageSettings) -> App:
    app = _app(transport, "matching")
    boxes = settings.buyboxes

    @app.subscribe("deals", group="matching", retry=RETRY)
    def match(deal: DealScored) -> list[Publish] | None:
        listing = deal.valued.listing
        out = []
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
                out.append(Publish("matches", matched, key=f"{box.name}/{listing.ListingKey}"))
        return out or None

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
    app = _app(transport, "alerts")
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


def board_stage(transport: Transport, settings: StageSettings) -> App:
    app = _app(transport, "board")
    board = DealBoard(settings.board_path)
    app.closing(board.close)

    @app.subscribe("deals", group="board", retry=RETRY)
    def deals(deal: DealScored, ctx: Context) -> None:
        board.apply(deal, ctx.event_id)

    @app.subscribe("matches", group="board", retry=RETRY)
    def matched(event: DealMatched, ctx: Context) -> None:
        board.apply(event, ctx.event_id)

    @app.subscribe("alerts", group="board", retry=RETRY)
    def alerted(event: AlertSent, ctx: Context) -> None:
        board.apply(event, ctx.event_id)

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
