"""A broker process killed with SIGKILL loses no acknowledged batch under ``always``, and an
idempotent retry of the last acknowledged batch is still recognized after the restart."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from eventyard.broker import Broker, BrokerConfig
from eventyard.records import BatchBuilder, decode_batches

WRITER = """
import asyncio, json, sys
from eventyard.broker import Broker, BrokerConfig
from eventyard.records import BatchBuilder

async def main(path, round_):
    config = BrokerConfig(default_durability="always")
    async with await Broker.open(path, config) as broker:
        producer_id, epoch = await broker.init_producer_id()
        sequence = 0
        for n in range(100_000):
            builder = BatchBuilder(producer_id=producer_id, producer_epoch=epoch,
                                   base_sequence=sequence)
            values = [b"r%d-b%d-%d" % (round_, n, i) for i in range(5)]
            for value in values:
                builder.append(value, timestamp_ms=1)
            result = await broker.produce("crash", 0, builder.build())
            print(json.dumps([result.base_offset, [v.decode() for v in values],
                              producer_id, sequence]), flush=True)
            sequence += 5

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def batch(producer_id: int, sequence: int, values: list[bytes]) -> bytes:
    builder = BatchBuilder(producer_id=producer_id, producer_epoch=0, base_sequence=sequence)
    for value in values:
        builder.append(value, timestamp_ms=1)
    return builder.build()


async def check(path: Path, acknowledged: list[tuple[int, list[bytes], int, int]]) -> None:
    async with await Broker.open(path, BrokerConfig(default_durability="always")) as broker:
        stored: dict[int, bytes | None] = {}
        offset = 0
        end = broker.describe_topic("crash").partitions[0].end_offset
        while offset < end:
            records = decode_batches((await broker.fetch("crash", 0, offset)).records)
            stored.update((r.offset, r.value) for r in records)
            offset = records[-1].offset + 1
        for base, values, _, _ in acknowledged:
            assert [stored[base + i] for i in range(len(values))] == values
        base, values, producer_id, sequence = acknowledged[-1]
        retry = await broker.produce("crash", 0, batch(producer_id, sequence, values))
        assert retry.base_offset == base
        assert broker.describe_topic("crash").partitions[0].end_offset == end


def test_acknowledged_batches_survive_sigkill(tmp_path: Path) -> None:
    rng = random.Random(2026)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    for round_ in range(3):
        process = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(round_)],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert process.stdout is not None
        acknowledged: list[tuple[int, list[bytes], int, int]] = []
        deadline = time.monotonic() + 20
        wanted = rng.randrange(20, 200)
        while len(acknowledged) < wanted and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            base, values, producer_id, sequence = json.loads(line)
            acknowledged.append((base, [v.encode() for v in values], producer_id, sequence))
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        assert acknowledged, "the writer acknowledged nothing"
        asyncio.run(check(tmp_path, acknowledged))
