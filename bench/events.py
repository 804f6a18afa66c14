"""The generated events every scenario feeds to eventyard and to its peers.

Each event is a CloudEvents-shaped JSON document of about 200 bytes (a real-estate listing
update, the flagship pipeline's bread and butter) with a key, produced deterministically from a
seed: the same seed gives the same bytes on every run and every machine, so two runs and two
systems are measured on identical input.

Generating an event in Python costs more than storing one, so a scenario never generates inside
its timed loop: it draws a pool once (:func:`generate`) and cycles through its pre-cut batches
(:class:`EventPool`). Cycling repeats values, which neither eventyard nor its peers deduplicate
or compress in these scenarios, so it changes no figure.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import msgspec

__all__ = ["DEFAULT_SEED", "Event", "EventPool", "generate"]

DEFAULT_SEED = 20261123
"""The seed every run uses unless told otherwise."""

_BASE_TIME_MS = 1_795_000_000_000
_TYPES = ("listing.created", "listing.price_changed", "listing.withdrawn", "listing.sold")
_CITIES = ("Lyon", "Porto", "Leipzig", "Valencia", "Gent", "Torino", "Brno", "Malmo")
_STREETS = ("Rue Garibaldi", "Rua das Flores", "Karl-Heine-Str.", "Carrer de Colon")


class Event(NamedTuple):
    """One generated event: the partition key and the JSON value, both as bytes."""

    key: bytes
    value: bytes


def _event(rng: random.Random, index: int) -> Event:
    listing = rng.randrange(1_000_000)
    millis = _BASE_TIME_MS + index * 7 + rng.randrange(7)
    seconds, ms = divmod(millis, 1000)
    document = {
        "id": f"{rng.getrandbits(48):012x}{index:08x}",
        "type": rng.choice(_TYPES),
        "source": f"/mls/feed-{rng.randrange(16)}",
        "time": f"{seconds}.{ms:03d}",
        "subject": f"listing-{listing:07d}",
        "data": {
            "price": rng.randrange(80_000, 2_500_000, 500),
            "beds": rng.randrange(1, 7),
            "city": rng.choice(_CITIES),
            "street": f"{rng.randrange(1, 300)} {rng.choice(_STREETS)}",
        },
    }
    return Event(key=f"listing-{listing:07d}".encode(), value=msgspec.json.encode(document))


def generate(count: int, seed: int = DEFAULT_SEED) -> list[Event]:
    """Return ``count`` events drawn from ``seed``; equal arguments give equal bytes."""
    rng = random.Random(seed)
    return [_event(rng, index) for index in range(count)]


@dataclass(frozen=True)
class EventPool:
    """A pool of generated events cut into equal batches that scenarios cycle through.

    ``size`` is rounded up to a whole number of batches so every batch is full.
    """

    batch_size: int
    size: int = 20_000
    seed: int = DEFAULT_SEED
    batches: tuple[Sequence[Event], ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.size < 1:
            raise ValueError("batch_size and size must be positive")
        count = -(-self.size // self.batch_size)
        events = generate(count * self.batch_size, self.seed)
        cut = tuple(events[i * self.batch_size : (i + 1) * self.batch_size] for i in range(count))
        object.__setattr__(self, "batches", cut)

    def take(self, total: int) -> Iterator[Sequence[Event]]:
        """Yield full batches, cycling through the pool, until ``total`` events are yielded.

        ``total`` must be a multiple of the batch size, so every scenario stores exactly what
        it reports.
        """
        if total % self.batch_size:
            raise ValueError(f"total {total} is not a multiple of the batch size {self.batch_size}")
        count = len(self.batches)
        for index in range(total // self.batch_size):
            yield self.batches[index % count]
