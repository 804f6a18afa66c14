"""A writer process for the SIGKILL tests (run as a script, not collected by pytest).

``crash_writer.py acks DIR ROUND``: append batches of 1-7 records under
``durability=always`` (append, then flush), printing ``BASE LAST`` once each is durable,
until killed. Values are ``value(ROUND, offset)``, so the parent can check every
acknowledged offset's exact content.

``crash_writer.py big DIR MIB``: append MIB MiB of 64 KiB batches with a flush every MiB,
print ``RSS_AT_START RSS_AT_END`` (bytes), then keep appending without flushing until
killed.
"""

from __future__ import annotations

import resource
import sys

from eventyard.records import BatchBuilder
from eventyard.storage import LogConfig, PartitionLog

ACKS_CONFIG = LogConfig(segment_bytes=64 * 1024, index_interval_bytes=1024)


def value(round_: int, offset: int) -> bytes:
    """The value written at ``offset`` in writer round ``round_`` (10 to 600 bytes)."""
    return (b"round-%d-offset-%d|" % (round_, offset)).ljust(10 + offset * 7919 % 590, b"#")


def acks(directory: str, round_: int) -> None:
    log = PartitionLog.open(directory, ACKS_CONFIG)
    print(f"open {log.end_offset}", flush=True)
    count = 0
    while True:
        offset = log.end_offset
        builder = BatchBuilder()
        for i in range(1 + count % 7):
            builder.append(value(round_, offset + i), key=b"k%d" % (count % 5))
        base, last = log.append(builder.build())
        log.flush()
        sys.stdout.write(f"{base} {last}\n")
        sys.stdout.flush()
        count += 1


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def big(directory: str, mib: int) -> None:
    builder = BatchBuilder()
    builder.append(b"\x5a" * (64 * 1024 - 80))
    batch = builder.build()
    log = PartitionLog.open(directory, LogConfig())
    count = (mib << 20) // len(batch)
    start_rss = 0
    for i in range(count):
        log.append(batch)
        if i % 16 == 15:
            log.flush()
        if i == count // 8:
            start_rss = rss()
    print(f"{start_rss} {rss()}", flush=True)
    while True:
        log.append(batch)


if __name__ == "__main__":
    mode, directory, number = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "acks":
        acks(directory, number)
    else:
        big(directory, number)
