"""Counters of one subscription, as ``app.stats(...)`` and the terminal views show them."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["SubscriptionStats"]


@dataclass(slots=True)
class SubscriptionStats:
    """What one subscription did since its app started (all its delay tiers included).

    ``handled`` counts handler calls that succeeded (each event of a batch counts once);
    ``failed`` counts failed calls (an event retried twice counts twice); ``retried`` the
    retries scheduled; ``dead_lettered`` events sent to the dead-letter topic, undecodable
    ones included; ``filtered`` events the content filter skipped; ``duplicates`` events the
    idempotency store had seen; ``held`` failures kept back while the circuit breaker was open.
    """

    fetched: int = 0
    handled: int = 0
    failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    filtered: int = 0
    duplicates: int = 0
    held: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
