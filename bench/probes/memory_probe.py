"""A broker process that stores events and reports its resident memory along the way.

:func:`weigh` runs ``python -m bench.probes.memory_probe DIRECTORY SEED N1 N2 ...``: the
child opens a `Broker` on DIRECTORY, creates a one-partition topic with the default
durability and sends batches of 500 generated events through one `Producer`, printing one
JSON line ``{"events": N, "rss": BYTES}`` after opening (N = 0) and once each checkpoint Ni is
stored. RSS is read with psutil inside the child, so it is exactly the broker process's.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec
import psutil  # type: ignore[import-untyped]

from bench.events import EventPool
from bench.probes import child_command, child_env
from eventyard.broker import Broker, TopicConfig
from eventyard.client import Producer

__all__ = ["Sample", "weigh"]

BATCH = 500
TOPIC = "bench-memory"


class Sample(msgspec.Struct, frozen=True):
    """The broker process's resident set size after storing ``events`` events."""

    events: int
    rss: int


def weigh(directory: Path, seed: int, checkpoints: Sequence[int]) -> list[Sample]:
    """Run the probe to the last checkpoint; return its samples (opening first).

    Raises :class:`RuntimeError` with the child's error output when it fails.
    """
    command = child_command(__name__, directory, seed, *checkpoints)
    result = subprocess.run(command, capture_output=True, env=child_env(), check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the memory probe failed: {result.stderr.decode()[-2000:]}")
    return [msgspec.json.decode(line, type=Sample) for line in result.stdout.splitlines()]


def _report(events: int, process: psutil.Process) -> None:
    line = msgspec.json.encode(Sample(events, process.memory_info().rss))
    sys.stdout.buffer.write(line + b"\n")
    sys.stdout.flush()


async def _store(directory: Path, seed: int, checkpoints: list[int]) -> None:
    process = psutil.Process()
    pool = EventPool(BATCH, seed=seed)
    async with await Broker.open(directory) as broker:
        await broker.create_topic(TOPIC, TopicConfig(partitions=1))
        async with Producer(broker) as producer:
            _report(0, process)
            stored = 0
            for checkpoint in checkpoints:
                for batch in pool.take(checkpoint - stored):
                    await producer.send_batch(TOPIC, batch)
                stored = checkpoint
                _report(stored, process)


def main(argv: list[str]) -> None:
    """``DIRECTORY SEED CHECKPOINT...`` (increasing multiples of 500)."""
    directory, seed, *checkpoints = argv
    asyncio.run(_store(Path(directory), int(seed), [int(c) for c in checkpoints]))


if __name__ == "__main__":
    main(sys.argv[1:])
