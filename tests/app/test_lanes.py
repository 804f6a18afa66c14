"""Lanes: one key runs in order, different keys run concurrently, at most ``count`` at once."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from eventyard.app.lanes import Lanes


def keys_in_distinct_lanes(count: int, wanted: int) -> list[bytes]:
    """``wanted`` keys that hash to different lanes of ``count`` (in this process)."""
    keys: dict[int, bytes] = {}
    n = 0
    while len(keys) < wanted:
        key = f"key-{n}".encode()
        keys.setdefault(hash(key) % count, key)
        n += 1
    return list(keys.values())


async def settle(lanes: Lanes[Any]) -> None:
    while tasks := lanes.tasks():
        await asyncio.wait(tasks)


async def test_one_key_runs_in_arrival_order() -> None:
    ran: list[int] = []
    done: list[int] = []

    async def run(item: int) -> bool:
        await asyncio.sleep(0.001 if item % 2 else 0)
        ran.append(item)
        return True

    lanes: Lanes[int] = Lanes(8, run, done.append)
    for item in range(20):
        lanes.push(item, b"same")
    assert len(lanes.tasks()) == 1
    await settle(lanes)
    assert ran == list(range(20))
    assert done == list(range(20))
    assert lanes.tasks() == []


async def test_different_keys_run_concurrently() -> None:
    both_started = asyncio.Event()
    started: list[bytes] = []

    async def run(item: bytes) -> bool:
        started.append(item)
        if len(started) == 2:
            both_started.set()
        await asyncio.wait_for(both_started.wait(), 2)
        return True

    done: list[bytes] = []
    lanes: Lanes[bytes] = Lanes(4, run, done.append)
    first, second = keys_in_distinct_lanes(4, 2)
    lanes.push(first, first)
    lanes.push(second, second)
    await settle(lanes)
    assert sorted(done) == sorted([first, second])


async def test_unkeyed_items_take_the_lanes_in_turn() -> None:
    running = 0
    peak = 0

    async def run(item: int) -> bool:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.005)
        running -= 1
        return True

    done: list[int] = []
    lanes: Lanes[int] = Lanes(3, run, done.append)
    for item in range(6):
        lanes.push(item, None)
    assert len(lanes.tasks()) == 3
    await settle(lanes)
    assert peak == 3
    assert sorted(done) == list(range(6))


async def test_concurrency_is_bounded_by_the_lane_count() -> None:
    running = 0
    peak = 0
    per_key: dict[bytes, list[int]] = defaultdict(list)

    async def run(item: tuple[bytes, int]) -> bool:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        per_key[item[0]].append(item[1])
        running -= 1
        return True

    done: list[tuple[bytes, int]] = []
    lanes: Lanes[tuple[bytes, int]] = Lanes(4, run, done.append)
    keys = [f"k{i}".encode() for i in range(20)]
    for n in range(5):
        for key in keys:
            lanes.push((key, n), key)
    assert len(lanes.tasks()) <= 4
    await settle(lanes)
    assert 1 < peak <= 4
    assert len(done) == 100
    assert all(order == list(range(5)) for order in per_key.values())


async def test_a_run_returning_false_stops_the_lane_and_leaves_the_item() -> None:
    ran: list[int] = []
    done: list[int] = []
    stop_at = 2

    async def run(item: int) -> bool:
        ran.append(item)
        await asyncio.sleep(0)
        return item != stop_at

    lanes: Lanes[int] = Lanes(2, run, done.append)
    stopping, other = keys_in_distinct_lanes(2, 2)
    for item in range(5):
        lanes.push(item, stopping)
    lanes.push(10, other)
    lanes.push(11, other)
    await settle(lanes)
    assert [i for i in ran if i < 10] == [0, 1, 2], "nothing behind the stopped item ran"
    assert sorted(done) == [0, 1, 10, 11], "the stopped item is not done"
    assert lanes.tasks() == []
    ran.clear()
    lanes.push(5, stopping)
    await settle(lanes)
    assert ran == [stop_at], "the unfinished item stays at the head of its lane"
    lanes.clear()
    ran.clear()
    lanes.push(6, stopping)
    await settle(lanes)
    assert ran == [6], "clear() forgets the queued items"
