"""OffsetTracker: a commit position never passes an offset whose event is unfinished."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from eventyard.app.tracking import OffsetTracker

A = ("t", 0)
B = ("t", 1)


def test_nothing_fetched_means_nothing_to_commit() -> None:
    tracker = OffsetTracker()
    assert tracker.positions() == {}
    assert tracker.caught_up()
    assert tracker.in_flight() == 0


def test_events_finished_on_dispatch_only_move_the_end() -> None:
    tracker = OffsetTracker()
    for offset in range(5):
        tracker.fetched(A, offset)
    assert tracker.positions() == {A: 5}
    assert tracker.in_flight() == 0
    assert not tracker.caught_up(), "fetched but not yet committed"


def test_the_position_stops_at_the_lowest_unfinished_offset() -> None:
    tracker = OffsetTracker()
    for offset in range(10):
        tracker.fetched(A, offset)
        if offset in (3, 6):
            tracker.begin(A, offset)
    assert tracker.positions() == {A: 3}
    assert tracker.in_flight() == 2
    tracker.finish(A, 6)
    assert tracker.positions() == {A: 3}, "a later offset finishing first moves nothing"
    tracker.finish(A, 3)
    assert tracker.positions() == {A: 10}
    assert tracker.in_flight() == 0


def test_positions_report_only_what_changed_since_the_last_commit() -> None:
    tracker = OffsetTracker()
    tracker.fetched(A, 0)
    tracker.fetched(B, 0)
    tracker.begin(B, 0)
    assert tracker.positions() == {A: 1, B: 0}
    tracker.committed({A: 1, B: 0})
    assert tracker.positions() == {}
    assert not tracker.caught_up(), "B/0 is still in flight"
    tracker.finish(B, 0)
    assert tracker.positions() == {B: 1}
    tracker.committed({B: 1})
    assert tracker.caught_up()


def test_finishing_an_offset_never_begun_is_harmless() -> None:
    tracker = OffsetTracker()
    tracker.fetched(A, 0)
    tracker.finish(A, 0)
    tracker.finish(B, 7)
    assert tracker.positions() == {A: 1}


def test_forget_drops_revoked_partitions() -> None:
    tracker = OffsetTracker()
    for tp in (A, B):
        tracker.fetched(tp, 0)
        tracker.begin(tp, 0)
    tracker.committed({A: 0, B: 0})
    tracker.forget(frozenset({A}))
    assert tracker.in_flight() == 1
    tracker.finish(A, 0)
    assert tracker.positions() == {A: 1}
    tracker.committed({A: 1})
    assert tracker.caught_up(), "B's events went to another member"


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_positions_match_a_reference_model(data: st.DataObject) -> None:
    """Fetch, finish (in any order) and commit interleaved: positions() is always the model's
    lowest unfinished offset (or the end), reported only when it moved."""
    tracker = OffsetTracker()
    partitions = [("t", p) for p in range(data.draw(st.integers(1, 3), label="partitions"))]
    ends = dict.fromkeys(partitions, 0)
    unfinished: dict[tuple[str, int], set[int]] = {tp: set() for tp in partitions}
    committed: dict[tuple[str, int], int] = {}
    for _ in range(data.draw(st.integers(1, 40), label="steps")):
        in_flight = sorted((tp, o) for tp, offsets in unfinished.items() for o in offsets)
        choices = ["fetch", "commit"] + (["finish"] if in_flight else [])
        step = data.draw(st.sampled_from(choices))
        if step == "fetch":
            tp = data.draw(st.sampled_from(partitions))
            for _ in range(data.draw(st.integers(1, 5))):
                offset = ends[tp]
                tracker.fetched(tp, offset)
                ends[tp] = offset + 1
                if data.draw(st.booleans()):
                    tracker.begin(tp, offset)
                    unfinished[tp].add(offset)
        elif step == "finish":
            tp, offset = data.draw(st.sampled_from(in_flight))
            tracker.finish(tp, offset)
            unfinished[tp].discard(offset)
        positions = tracker.positions()
        model = {
            tp: min(unfinished[tp]) if unfinished[tp] else ends[tp]
            for tp in partitions
            if ends[tp] > 0
        }
        expected = {tp: p for tp, p in model.items() if committed.get(tp) != p}
        assert positions == expected
        for tp, position in positions.items():
            assert all(position <= o for o in unfinished[tp]), "passed an unfinished offset"
        assert tracker.in_flight() == sum(len(s) for s in unfinished.values())
        if step == "commit":
            tracker.committed(positions)
            committed.update(positions)
            assert tracker.positions() == {}
            assert tracker.caught_up() == (tracker.in_flight() == 0)
