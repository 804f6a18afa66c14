"""The raw-disk baseline: ``os.write`` of the same bytes and ``os.fdatasync`` every MiB.

This is the ceiling of any log on this disk from Python: no framing, no index, no offsets,
one system call per block. eventyard's append bandwidth is reported as a share of it, measured
in the same run on the same filesystem so disk weather affects both alike.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["SYNC_EVERY", "write_and_sync"]

SYNC_EVERY = 1 << 20
"""Bytes written between two ``fdatasync`` calls (1 MiB)."""


def write_and_sync(
    path: Path, block: bytes, total_bytes: int, sync_every: int = SYNC_EVERY
) -> float:
    """Write ``block`` repeatedly to a new file at ``path`` until ``total_bytes`` are written.

    ``fdatasync`` runs whenever ``sync_every`` bytes have been written since the last one, and
    once at the end, so every byte is on the device when the clock stops. Opening and closing
    the file are not timed. Returns the seconds taken; the file is left for the caller.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        written = unsynced = 0
        started = time.perf_counter()
        while written < total_bytes:
            n = os.write(fd, block)
            written += n
            unsynced += n
            if unsynced >= sync_every:
                os.fdatasync(fd)
                unsynced = 0
        if unsynced:
            os.fdatasync(fd)
        return time.perf_counter() - started
    finally:
        os.close(fd)
