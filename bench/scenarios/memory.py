"""Memory: the resident set size (RSS, read with psutil) of a broker process as it stores 1, 5
and 10 million events, which must stay flat.

A child process (`bench.probes.memory_probe`) opens a `Broker` on a fresh data directory,
creates a one-partition topic with the default durability and sends the generated events in
batches of 500 through one `Producer`, reporting its own RSS after opening and at each
checkpoint. The broker keeps stored events on disk, not in memory: the page cache holds
recently written data but is not part of the process's RSS, and the in-memory sparse indexes
add about 20 bytes per indexed batch (at most one entry per 4 KiB of log; here one per batch
of 500, about 0.4 MiB for 10 million events). The figure is the growth from the first checkpoint
to the last; the target allows 64 MiB over 9 million events, about 7 bytes per event, so any
per-event retention shows. `--quick` uses 10k, 50k and 100k events.
"""

from __future__ import annotations

import shutil

from bench.harness import Comparison, Figure, Measurement, Scenario, Settings, Target
from bench.probes.memory_probe import weigh

__all__ = ["SCENARIO"]

_MIB = 2**20


def run(settings: Settings) -> Measurement:
    checkpoints = (
        [10_000, 50_000, 100_000] if settings.quick else [1_000_000, 5_000_000, 10_000_000]
    )
    directory = settings.workdir / "memory"
    try:
        samples = weigh(directory, settings.seed, checkpoints)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if [s.events for s in samples] != [0, *checkpoints]:
        raise RuntimeError(f"the memory probe reported {samples}, expected {checkpoints}")
    first, last = samples[1], samples[-1]
    growth = (last.rss - first.rss) / _MIB
    trail = ", ".join(f"{s.rss / _MIB:.0f} MiB at {s.events:,}" for s in samples[1:])
    return Measurement(
        figure=Figure(growth, "MiB"),
        notes=(
            f"RSS growth from {first.events:,} to {last.events:,} events; RSS "
            f"{samples[0].rss / _MIB:.0f} MiB after open, {trail} events",
        ),
        details={f"rss_mib_at_{s.events}": s.rss / _MIB for s in samples},
    )


SCENARIO = Scenario(
    name="memory",
    title="Broker RSS growth, 1M to 10M events",
    target=Target(Comparison.BELOW, 64, "MiB"),
    run=run,
    method=__doc__ or "",
)
