"""A writer process to crash: it appends record batches past a size, reports, and goes on.

Used by the recovery scenario: :func:`crash` starts ``python -m bench.probes.crash_writer``
on a data directory, waits for the line with the last offset appended once the log passed the
size, and kills the child with SIGKILL at that moment, so the log ends wherever the kill landed.
Two kinds: ``log`` appends to a `PartitionLog` directly, ``broker`` produces through a
`Broker` to a one-partition topic; both with durability ``never`` (a process crash loses nothing
the OS already holds, which is what recovery must then find).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from bench.batches import encode
from bench.events import EventPool
from bench.probes import child_command, child_env
from eventyard.broker import Broker, TopicConfig
from eventyard.storage import Durability, LogConfig, PartitionLog

__all__ = ["TOPIC", "crash", "log_config"]

TOPIC = "bench-recovery"
"""The broker writer's topic (partition 0)."""


def log_config() -> LogConfig:
    """The `PartitionLog` settings of the ``log`` writer; recovery must open with the same."""
    return LogConfig(durability=Durability.parse("never"))


def crash(kind: str, directory: Path, size: int, seed: int) -> int:
    """Run a ``kind`` writer until it passes ``size`` bytes, SIGKILL it; return its last offset.

    Raises :class:`RuntimeError` when the child dies before reporting.
    """
    command = child_command(__name__, kind, directory, size, seed)
    with subprocess.Popen(command, stdout=subprocess.PIPE, env=child_env()) as child:
        assert child.stdout is not None
        line = child.stdout.readline()
        child.send_signal(signal.SIGKILL)
        child.wait()
    if not line.strip():
        raise RuntimeError(f"the {kind} writer exited ({child.returncode}) before reporting")
    return int(line)


def _report(last_offset: int) -> None:
    sys.stdout.write(f"{last_offset}\n")
    sys.stdout.flush()


def _write_log(directory: Path, size: int, batch: bytes) -> None:
    log = PartitionLog.open(str(directory), log_config())
    reported = False
    while True:
        _, last = log.append(batch)
        if not reported and log.size_bytes >= size:
            _report(last)
            reported = True


async def _write_broker(directory: Path, size: int, batch: bytes) -> None:
    broker = await Broker.open(directory)
    await broker.create_topic(TOPIC, TopicConfig(partitions=1, durability="never"))
    written = 0
    reported = False
    while True:
        result = await broker.produce(TOPIC, 0, batch)
        written += len(batch)
        if not reported and written >= size:
            _report(result.last_offset)
            reported = True


def main(argv: list[str]) -> None:
    """``KIND DIRECTORY SIZE SEED``: write batches of 500 generated events until killed."""
    kind, directory, size, seed = argv
    batch = encode(EventPool(500, 500, int(seed)).batches[0])
    if kind == "log":
        _write_log(Path(directory), int(size), batch)
    else:
        asyncio.run(_write_broker(Path(directory), int(size), batch))


if __name__ == "__main__":
    main(sys.argv[1:])
