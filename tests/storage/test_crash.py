"""Real crashes: a writer process SIGKILLed at random moments loses nothing it acknowledged.

Mirrors no single module: it exercises ``PartitionLog`` end to end (append, flush,
recovery) the way a power cut of the broker process would.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eventyard.records import decode_batches, split_batches
from eventyard.storage import LogConfig, PartitionLog
from tests.storage.crash_writer import ACKS_CONFIG, value

WRITER = str(Path(__file__).with_name("crash_writer.py"))


def read_all(log: PartitionLog) -> dict[int, bytes | None]:
    out: dict[int, bytes | None] = {}
    offset = log.start_offset
    while offset < log.end_offset:
        data = log.read(offset, 1 << 20)
        out.update((r.offset, r.value) for r in decode_batches(data))
        offset = split_batches(data)[-1][1].last_offset + 1
    return out


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_no_acknowledged_batch(tmp_path: Path) -> None:
    rng = random.Random(20261123)
    directory = str(tmp_path / "p0")
    acked: dict[int, int] = {}  # offset -> round that acknowledged it
    for round_ in range(10):
        with subprocess.Popen(
            [sys.executable, WRITER, "acks", directory, str(round_)],
            stdout=subprocess.PIPE,
        ) as writer:
            assert writer.stdout is not None
            opened = writer.stdout.readline().split()
            assert opened[0] == b"open"
            assert int(opened[1]) >= max(acked, default=-1) + 1
            time.sleep(rng.uniform(0.05, 0.5))
            writer.send_signal(signal.SIGKILL)
            output = writer.stdout.read()
            writer.wait()
        lines = output.split(b"\n")
        for line in lines[:-1]:  # the last element is empty or a line cut by the kill
            base, last = map(int, line.split())
            for offset in range(base, last + 1):
                acked[offset] = round_
        log = PartitionLog.open(directory, ACKS_CONFIG)
        stored = read_all(log)
        log.close()
        for offset, acked_round in acked.items():
            assert stored.get(offset) == value(acked_round, offset), (round_, offset)
    assert len(acked) > 100


@pytest.mark.slow
def test_reopening_a_1_gib_log_after_sigkill_is_fast_and_memory_stays_flat(
    tmp_path: Path,
) -> None:
    directory = str(tmp_path / "big")
    with subprocess.Popen(
        [sys.executable, WRITER, "big", directory, "1024"], stdout=subprocess.PIPE
    ) as writer:
        assert writer.stdout is not None
        start_rss, end_rss = map(int, writer.stdout.readline().split())
        time.sleep(0.3)  # unflushed appends in flight when the kill lands
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    # 7/8 of a GiB appended between the two samples: the writer holds no per-record state.
    assert end_rss - start_rss < 16 << 20
    started = time.perf_counter()
    log = PartitionLog.open(directory, LogConfig())
    elapsed = time.perf_counter() - started
    assert log.size_bytes >= 1 << 30
    assert elapsed < 2.0
    assert log.read(log.end_offset - 1, 1)
    log.close()
    shutil.rmtree(directory)  # pytest keeps the last runs' tmp_path: not 1 GiB each
