"""Which offsets a subscription may commit: the lowest unfinished one per partition.

Events of one partition are handled out of order when their keys differ, yet a commit
says "everything before this offset is done". :class:`OffsetTracker` keeps, per partition,
the offsets still in flight (in the order they were fetched, which is offset order) and the
offset after the last one fetched; the committable position is the first in-flight offset,
or that end when nothing is in flight. An event that finishes the moment it is dispatched
(most do) is never recorded at all: it only moves the end.

Contract: :meth:`fetched` is called for every offset in fetch order before :meth:`begin` or
:meth:`finish` of it; :meth:`positions` then never passes an offset whose event is not done,
which is what makes delivery at-least-once.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eventyard.transports import Message

__all__ = ["OffsetTracker"]

TP = tuple[str, int]
_PARTITION = operator.attrgetter("topic", "partition")
_OFFSET = operator.attrgetter("offset")


class OffsetTracker:
    """In-flight offsets per partition and the positions that are safe to commit."""

    __slots__ = ("_committed", "_ends", "_in_flight")

    def __init__(self) -> None:
        self._in_flight: dict[TP, dict[int, None]] = {}
        self._ends: dict[TP, int] = {}
        self._committed: dict[TP, int] = {}

    def fetched(self, tp: TP, offset: int) -> None:
        """Note that ``offset`` of ``tp`` has been fetched (and will be handled)."""
        self._ends[tp] = offset + 1

    def fetched_all(self, messages: Sequence[Message]) -> None:
        """:meth:`fetched` for a whole fetch, one update per partition rather than per record.

        A fetch returns each partition's records together and in offset order, so the last
        record of each run is the partition's new end.
        """
        ends = self._ends
        for tp, run in itertools.groupby(messages, key=_PARTITION):
            *_, last = run
            ends[tp] = last.offset + 1

    def begin(self, tp: TP, offset: int) -> None:
        """Note that the event at ``offset`` did not finish when dispatched."""
        pending = self._in_flight.get(tp)
        if pending is None:
            pending = self._in_flight[tp] = {}
        pending[offset] = None

    def begin_all(self, messages: Iterable[Message]) -> None:
        """:meth:`begin` for each of ``messages`` (in fetch order), one update per partition."""
        in_flight = self._in_flight
        for tp, run in itertools.groupby(messages, key=_PARTITION):
            pending = in_flight.get(tp)
            if pending is None:
                pending = in_flight[tp] = {}
            pending.update(dict.fromkeys(map(_OFFSET, run)))

    def finish(self, tp: TP, offset: int) -> None:
        """Note that the event at ``offset``, begun earlier, is done."""
        pending = self._in_flight.get(tp)
        if pending is not None:
            pending.pop(offset, None)
            if not pending:
                del self._in_flight[tp]

    def in_flight(self) -> int:
        """How many events are begun and not finished."""
        return sum(len(pending) for pending in self._in_flight.values())

    def positions(self) -> dict[TP, int]:
        """The positions that changed since the last :meth:`committed`, safe to commit."""
        out: dict[TP, int] = {}
        committed = self._committed
        for tp, end in self._ends.items():
            pending = self._in_flight.get(tp)
            position = next(iter(pending)) if pending else end
            if committed.get(tp) != position:
                out[tp] = position
        return out

    def committed(self, positions: dict[TP, int]) -> None:
        """Record that ``positions`` were committed."""
        self._committed.update(positions)

    def caught_up(self) -> bool:
        """Nothing in flight, and every position fetched so far is committed."""
        return not self._in_flight and not self.positions()

    def forget(self, keep: frozenset[TP]) -> None:
        """Drop partitions not in ``keep`` (revoked by a rebalance: their events go elsewhere)."""
        for table in (self._in_flight, self._ends, self._committed):
            for tp in [tp for tp in table if tp not in keep]:
                del table[tp]
