"""Per-key ordering with bounded concurrency: events run in lanes chosen by their key.

A subscription has ``concurrency`` lanes. An event goes to the lane its key hashes to (an
unkeyed event to the next lane in turn), and each lane runs its events one after another,
in the order they arrived, in one task. So events of one key never overtake each other,
events of different keys run concurrently, and up to ``concurrency`` handlers run at once.

Why lanes rather than a task per event: creating and scheduling an ``asyncio.Task`` costs
about 10 µs, more than everything else a no-op handler's event costs together. A lane's task
lives as long as its lane has work; awaiting one handler after another inside it costs
about 0.2 µs each. Under load every lane stays busy and tasks are made only when a lane
drains and refills. Handlers also run inside a real task, so ``asyncio.timeout``,
``TaskGroup`` and ``current_task()`` in a handler behave as they do anywhere else.

The price is head-of-line blocking inside a lane: a slow event delays the events of other
keys that share its lane (never of other lanes). Raise ``concurrency`` for handlers that
wait on I/O for long.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["Lanes"]

T = TypeVar("T")


class _Lane(Generic[T]):
    __slots__ = ("queue", "task")

    def __init__(self) -> None:
        self.queue: deque[T] = deque()
        self.task: asyncio.Task[None] | None = None


class Lanes(Generic[T]):
    """``count`` lanes that run ``run(item)`` for each item, then ``done(item)``.

    ``run`` returns ``True`` when the item is finished, ``None`` when it is done in its lane
    but finished later by someone else (who then calls ``done``), ``False`` when the
    subscription is stopping and the item was left unfinished: the lane then stops, leaving
    that item and the ones behind it unfinished (they are never committed, so they are
    delivered again).
    """

    def __init__(
        self,
        count: int,
        run: Callable[[T], Awaitable[bool | None]],
        done: Callable[[T], None],
    ) -> None:
        self._lanes = [_Lane[T]() for _ in range(count)]
        self._count = count
        self._run = run
        self._done = done
        self._turn = 0

    def push(self, item: T, key: bytes | None) -> None:
        """Queue ``item`` on its key's lane (the next lane in turn for ``None``)."""
        if key is None:
            index = self._turn
            self._turn = (index + 1) % self._count
        else:
            index = hash(key) % self._count
        lane = self._lanes[index]
        lane.queue.append(item)
        if lane.task is None:
            lane.task = asyncio.get_running_loop().create_task(self._drive(lane))

    async def _drive(self, lane: _Lane[T]) -> None:
        queue = lane.queue
        run = self._run
        done = self._done
        try:
            while queue:
                item = queue[0]
                outcome = await run(item)
                if outcome is False:
                    return
                queue.popleft()
                if outcome:
                    done(item)
        finally:
            lane.task = None

    def tasks(self) -> list[asyncio.Task[None]]:
        """The lanes' running tasks."""
        return [lane.task for lane in self._lanes if lane.task is not None]

    def clear(self) -> None:
        """Forget every queued item (at shutdown, after the tasks ended)."""
        for lane in self._lanes:
            lane.queue.clear()
