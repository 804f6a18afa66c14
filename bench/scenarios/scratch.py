"""A throwaway broker with one topic, for the scenarios that go through the broker.

Each run gets a fresh data directory (so no run reads another's pages back) that is removed
when the run ends, whatever happened in it.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from eventyard.broker import Broker, TopicConfig

__all__ = ["scratch_broker"]


@asynccontextmanager
async def scratch_broker(
    directory: Path, topic: str, durability: str | None = None, partitions: int = 1
) -> AsyncIterator[Broker]:
    """Open a broker on a new ``directory`` with ``topic`` created; close and delete after.

    ``durability`` ``None`` keeps the broker's default (``interval:1000``), what a user who
    sets nothing gets.
    """
    broker = await Broker.open(directory)
    try:
        await broker.create_topic(topic, TopicConfig(partitions=partitions, durability=durability))
        yield broker
    finally:
        try:
            await broker.close()
        finally:
            shutil.rmtree(directory, ignore_errors=True)
