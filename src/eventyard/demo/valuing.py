"""The valuation stage: every open listing valued by the newest model, retrained as sales close.

It reads ``comped`` and writes ``valued`` (one :class:`ListingValued` per New Listing, Price
Change and Back On Market) and ``models`` (one :class:`ModelTrained` per retrain). Its
rules:

- **No look-ahead.** A model is trained only on the sales closed before the time of the
  event that triggered it (``TrainedAsOf``), and a listing is valued with the newest model
  trained as of its own time or earlier (:class:`~eventyard.demo.training.ModelShelf`):
  the partitions of ``comped`` interleave, so a model may be newer than the next listing.
- **Retrain every** ``retrain_every`` **closed sales**, once ``min_training_sales`` have
  closed before the event's time; each retrain runs in the training process
  (:class:`~eventyard.demo.training.Trainer`) while the stage goes on valuing with the
  models it has, and publishes a ``ModelTrained`` event when it is done. One retrain at a
  time: the sales that close meanwhile count towards the next.
- **Before the first model**, a listing is valued at its comps' median price per square
  foot (:func:`comped_estimate`) with a ±15% interval, as model version 0; a listing with no
  comps either is not valued.

The handler takes a batch (one call per fetched chunk): the listings of a chunk valued by
the same model are valued in one :meth:`~eventyard.demo.valuation.Valuer.predict_many`
call, whose cost is mostly per call, and their valuations are published in one go. The
chunk is handled in its order, so per-listing order holds.

State and restarts: the closed sales live in memory, rebuilt from the start of ``comped``
when the stage starts (:func:`~eventyard.demo.stageapp.history`); since training only ever
uses sales closed before the event at hand, a restarted stage values redelivered events as
it would have the first time (with the models it has retrained by then).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging

from eventyard.app import App, Publish
from eventyard.demo.events import PRICED_CHANGES, ListingComped, ListingValued, ModelTrained
from eventyard.demo.settings import StageSettings
from eventyard.demo.stageapp import RETRY, StageApp, history
from eventyard.demo.training import ModelShelf, Trainer, encode_sale
from eventyard.demo.valuation import Valuation, Valuer
from eventyard.transports import Transport

__all__ = ["comped_estimate", "valuation_stage"]

log = logging.getLogger("eventyard.demo")


def comped_estimate(comped: ListingComped) -> float | None:
    """The comps' median price per square foot times the listing's living area."""
    rates = sorted(c.ClosePrice / c.LivingArea for c in comped.comps if c.LivingArea > 0)
    if not rates or comped.listing.LivingArea <= 0:
        return None
    return rates[len(rates) // 2] * comped.listing.LivingArea


class _Valuation:
    """The stage's state (one owner: the stage's event loop) and its batch handler."""

    def __init__(self, app: App, settings: StageSettings) -> None:
        self.app = app
        self.settings = settings
        self.trainer = Trainer(settings.seed)
        self.shelf = ModelShelf()
        self.closed: dict[str, tuple[str, bytes]] = {}
        """ListingKey -> (close time, the sale as the training process receives it)."""
        self.close_times: list[str] = []
        """Sorted close times: how many sales closed before a time is one bisection, since
        closed sales arrive out of market-time order."""
        self.trained = 0
        """How many sales had closed before the last retrain's time."""
        self.training: asyncio.Task[None] | None = None

    def add(self, comped: ListingComped) -> None:
        listing = comped.listing
        if listing.ListingKey not in self.closed:
            self.closed[listing.ListingKey] = (listing.ModificationTimestamp, encode_sale(listing))
            bisect.insort(self.close_times, listing.ModificationTimestamp)

    async def restore(self) -> None:
        await self.trainer.start()
        for comped in await history(self.app.transport, "comped", ListingComped):
            if comped.listing.ChangeType == "Closed":
                self.add(comped)

    def maybe_retrain(self, as_of: str) -> None:
        if self.training is not None and not self.training.done():
            return
        eligible = bisect.bisect_left(self.close_times, as_of)
        if eligible < self.settings.min_training_sales:
            return
        if self.shelf.version and eligible - self.trained < self.settings.retrain_every:
            return
        self.trained = eligible
        self.training = asyncio.ensure_future(self._retrain(as_of))

    async def _retrain(self, as_of: str) -> None:
        """Fit on the sales closed before ``as_of`` (no look-ahead), then announce it."""
        sales = [sale for closed_at, sale in self.closed.values() if closed_at < as_of]
        try:
            valuer = await self.trainer.fit(sales)
        except Exception as exc:  # the models there are stay in use; the next retrain retries
            log.warning("valuation: retraining failed (the previous model stays): %r", exc)
            return
        version = self.shelf.add(as_of, valuer)
        model = ModelTrained(ModelVersion=version, TrainedAsOf=as_of, Sales=len(sales))
        await self.app.publish("models", model, key="model")

    def value(self, batch: list[ListingComped]) -> list[Publish] | None:
        """Value the open listings of ``batch``, one model call per model used."""
        todo: list[tuple[ListingComped, tuple[Valuer, int] | None]] = []
        for comped in batch:
            change = comped.listing.ChangeType
            if change == "Closed":
                self.add(comped)
            elif change in PRICED_CHANGES:
                as_of = comped.listing.ModificationTimestamp
                self.maybe_retrain(as_of)
                todo.append((comped, self.shelf.pick(as_of)))
        by_model: dict[int, tuple[Valuer, list[int]]] = {}
        for index, (_, picked) in enumerate(todo):
            if picked is not None:
                by_model.setdefault(picked[1], (picked[0], []))[1].append(index)
        valuations: dict[int, Valuation] = {}
        for valuer, indexes in by_model.values():
            found = valuer.predict_many([todo[i][0].listing for i in indexes])
            valuations.update(zip(indexes, found, strict=True))
        out = []
        for index, (comped, picked) in enumerate(todo):
            valued = self._valued(comped, picked, valuations.get(index))
            if valued is not None:
                out.append(Publish("valued", valued, key=comped.listing.ListingKey))
        return out or None

    @staticmethod
    def _valued(
        comped: ListingComped, picked: tuple[Valuer, int] | None, valuation: Valuation | None
    ) -> ListingValued | None:
        if picked is not None and valuation is not None:
            estimate, low, high = valuation.estimate, valuation.low, valuation.high
            version = picked[1]
        else:
            rough = comped_estimate(comped)
            if rough is None:
                return None
            estimate, low, high, version = int(rough), round(rough * 0.85), round(rough * 1.15), 0
        return ListingValued(
            listing=comped.listing,
            comps=comped.comps,
            Estimate=estimate,
            Low=low,
            High=high,
            ModelVersion=version,
        )

    async def close(self) -> None:
        """Abandon a retrain under way and stop the training process."""
        if self.training is not None and not self.training.done():
            self.training.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.training
        await self.trainer.close()


def valuation_stage(transport: Transport, settings: StageSettings) -> App:
    """The valuation stage's app on ``transport`` (module docstring)."""
    app = StageApp(transport, "valuation")
    state = _Valuation(app, settings)
    app.on_start(state.restore)
    app.closing(state.close)

    @app.subscribe("comped", group="valuation", retry=RETRY)
    def value(batch: list[ListingComped]) -> list[Publish] | None:
        return state.value(batch)

    return app
