"""Append bandwidth: 64 KiB record batches through `storage.PartitionLog`, `fdatasync` every
MiB, against raw `os.write` + `os.fdatasync` of the same bytes every MiB, in the same run.

One batch of the generated events just under 64 KiB is built once; eventyard appends it
again and again to a fresh `PartitionLog` (durability `never`, so the benchmark owns the
syncs) and calls `flush()` whenever a MiB has been appended since the last one, and once at
the end (`flush` fsyncs the segment and, every 4 MiB, writes the index files and a recovery
checkpoint). `append` validates each batch's header, patches its base offset, writes it and
maintains the sparse index, which is the work the raw baseline leaves out. The raw side writes
the same batch bytes the same number of times to a new file, one `os.write` each, with
`os.fdatasync` after every MiB and at the end. Opening and closing are not timed. The sides
alternate, best of three runs each; figures are MiB/s of batch bytes made durable.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from bench.batches import sized_batch
from bench.events import EventPool
from bench.harness import (
    Comparison,
    Figure,
    Measurement,
    PeerFigure,
    Scenario,
    Settings,
    Target,
    run_details,
)
from bench.peers.raw_disk import SYNC_EVERY, write_and_sync
from eventyard.storage import Durability, LogConfig, PartitionLog

__all__ = ["SCENARIO"]

BATCH_BYTES = 64 * 1024


def _eventyard(directory: Path, batch: bytes, count: int) -> float:
    log = PartitionLog.open(str(directory), LogConfig(durability=Durability.parse("never")))
    try:
        unsynced = 0
        started = time.perf_counter()
        for _ in range(count):
            log.append(batch)
            unsynced += len(batch)
            if unsynced >= SYNC_EVERY:
                log.flush()
                unsynced = 0
        if unsynced:
            log.flush()
        return time.perf_counter() - started
    finally:
        log.close()


def run(settings: Settings) -> Measurement:
    total = settings.scale(256, 4) * 2**20
    repeats = settings.scale(3, 1)
    batch, records = sized_batch(EventPool(500, 1000, settings.seed), BATCH_BYTES)
    count = -(-total // len(batch))
    volume = count * len(batch) / 2**20
    root = settings.workdir / "append-bandwidth"
    raw_runs: list[float] = []
    log_runs: list[float] = []
    try:
        for attempt in range(repeats):
            root.mkdir()
            raw_runs.append(write_and_sync(root / "raw.bin", batch, count * len(batch)))
            log_runs.append(_eventyard(root / f"log-{attempt}", batch, count))
            shutil.rmtree(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return Measurement(
        figure=Figure(volume / min(log_runs), "MiB/s"),
        peer=PeerFigure("raw os.write + fdatasync", Figure(volume / min(raw_runs), "MiB/s")),
        notes=(
            f"{count} batches of {len(batch):,} bytes ({records} events) = {volume:.0f} MiB, "
            f"fdatasync every {SYNC_EVERY // 2**20} MiB, best of {repeats} alternating runs",
        ),
        details=run_details(eventyard=log_runs, raw=raw_runs),
    )


SCENARIO = Scenario(
    name="append",
    title="Append 64 KiB batches, fdatasync every MiB",
    target=Target(Comparison.RATIO_AT_LEAST, 0.7),
    run=run,
    method=__doc__ or "",
)
