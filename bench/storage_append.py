"""Append throughput of ``PartitionLog`` against the raw disk it writes to, and reopen time.

Both sides write the same bytes, 64 KiB at a time, with an ``fdatasync`` after every MiB:

- raw: ``os.write`` of 64 KiB chunks to one file, ``os.fdatasync`` every 16 writes;
- eventyard: ``PartitionLog.append`` of a 64 KiB record batch (one record), ``flush()``
  every 16 appends (what group commit under ``durability=always`` does at this size).

Then a child process appends ``--mib`` MiB the same way, keeps appending without flushing,
and is SIGKILLed; the time to reopen (recover) its log is measured, as the brief requires
it under 2 s for 1 GiB. Run: ``python -m bench.storage_append [--mib 64] [--rounds 5] [--dir DIR]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from eventyard.records import BatchBuilder, read_header
from eventyard.storage import LogConfig, PartitionLog

BATCH = 64 * 1024
PER_SYNC = 16


def make_batch(size: int = BATCH) -> bytes:
    """A one-record batch of exactly ``size`` bytes."""
    value_size = size - 100
    for _ in range(3):
        builder = BatchBuilder()
        builder.append(os.urandom(value_size))
        data = builder.build()
        if len(data) == size:
            return data
        value_size += size - len(data)
    raise AssertionError(f"cannot build a {size}-byte batch")


def raw(directory: str, total: int, chunk: bytes) -> float:
    """Seconds to write ``total`` bytes with os.write + fdatasync every MiB."""
    path = os.path.join(directory, "raw.bin")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        start = time.perf_counter()
        for i in range(total // len(chunk)):
            os.write(fd, chunk)
            if i % PER_SYNC == PER_SYNC - 1:
                os.fdatasync(fd)
        os.fdatasync(fd)
        return time.perf_counter() - start
    finally:
        os.close(fd)
        os.remove(path)


def appends(path: str, total: int, batch: bytes, checked: bool) -> float:
    """Seconds to append ``total`` bytes to a new log with a flush every MiB.

    ``checked``: pass the batch header as the broker does after validating the request,
    so ``append`` skips its own CRC-32C pass.
    """
    log = PartitionLog.open(path, LogConfig())
    header = read_header(batch) if checked else None
    try:
        start = time.perf_counter()
        for i in range(total // len(batch)):
            log.append(batch, header)
            if i % PER_SYNC == PER_SYNC - 1:
                log.flush()
        log.flush()
        return time.perf_counter() - start
    finally:
        log.close()


def child(path: str, total: int) -> None:
    """Append ``total`` bytes durably, say so, then append forever until killed."""
    batch = make_batch()
    log = PartitionLog.open(path, LogConfig())
    for i in range(total // len(batch)):
        log.append(batch)
        if i % PER_SYNC == PER_SYNC - 1:
            log.flush()
    print("ready", flush=True)
    while True:
        log.append(batch)


def reopen_after_kill(path: str, total: int) -> tuple[float, int]:
    """Seconds to reopen a log of ``total`` bytes whose writer was SIGKILLed; its size."""
    command = [sys.executable, "-m", "bench.storage_append", "--child", path, "--mib"]
    with subprocess.Popen([*command, str(total >> 20)], stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        assert process.stdout.readline() == b"ready\n"
        time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        process.wait()
    start = time.perf_counter()
    log = PartitionLog.open(path, LogConfig())
    elapsed = time.perf_counter() - start
    size = log.size_bytes
    log.close()
    return elapsed, size


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mib", type=int, default=64, help="MiB written per run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs per side")
    parser.add_argument("--kill-mib", type=int, default=1024, help="log size for the reopen")
    parser.add_argument("--dir", default=None, help="directory on the disk to measure")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    total = args.mib << 20
    if args.child:
        child(args.child, total)
        return
    batch = make_batch()
    timings: dict[str, list[float]] = {"raw": [], "append": [], "append(header)": []}
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        log_path = os.path.join(directory, "log")
        # Alternate the sides so a neighbour's burst of disk traffic hits all of them.
        for _ in range(args.rounds):
            timings["raw"].append(raw(directory, total, batch))
            for name, checked in (("append", False), ("append(header)", True)):
                timings[name].append(appends(log_path, total, batch, checked))
                shutil.rmtree(log_path)
        reopen_s, size = reopen_after_kill(log_path, args.kill_mib << 20)
    mib = total / (1 << 20)
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print(f"64 KiB writes, fdatasync every MiB: median of {args.rounds} runs of {mib:.0f} MiB")
    for name, seconds in medians.items():
        print(
            f"{name:<16} {mib / seconds:8.1f} MiB/s {total // len(batch) / seconds:10,.0f}"
            f" writes/s  {medians['raw'] / seconds:5.2f} x raw"
        )
    print(f"reopen after SIGKILL: {reopen_s * 1000:.1f} ms ({size / (1 << 20):.0f} MiB log)")


if __name__ == "__main__":
    main()
