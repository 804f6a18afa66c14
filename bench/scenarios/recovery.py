"""Recovery after a crash: a child process writes about 1 GiB of record batches, is killed
with SIGKILL while still appending, and `PartitionLog.open` (then, on a second such log,
`Broker.open`) is timed on what it left.

The first child appends batches of 500 generated events straight to a `PartitionLog`
(default `LogConfig`, durability `never`); the second produces the same batches through a
`Broker` to a one-partition topic. Each writes 1 GiB less 16 MiB, so the whole log stays in
one active segment (`segment.bytes` defaults to 1 GiB): the worst case, since recovery checks
the active segment batch by batch and trusts only closed ones. Each child reports once it has
passed that size and keeps appending; the harness kills it at that moment, so the log ends
wherever the kill landed, as after a real crash. The harness then times the open (recovery
included) in its own process, checks that no batch the child had appended before its report
was lost, and notes what recovery logged (a torn tail it truncated, for instance). The page
cache is warm (the data was just written; dropping caches needs root), so this is the time to
check and index the log, not to read it from a cold disk. The figure is the slower of the two
opens; the note gives both.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.harness import Comparison, Figure, Measurement, Scenario, Settings, Target
from bench.probes.crash_writer import TOPIC, crash, log_config
from eventyard.broker import LATEST, Broker
from eventyard.storage import PartitionLog

__all__ = ["SCENARIO"]

_MIB = 2**20


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _recovery_log() -> Iterator[list[str]]:
    """Collect what eventyard logs meanwhile, instead of printing it over the table."""
    logger = logging.getLogger("eventyard")
    handler = _Collect()
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _open_log(directory: Path) -> tuple[float, int, int]:
    started = time.perf_counter()
    log = PartitionLog.open(str(directory), log_config())
    elapsed = time.perf_counter() - started
    try:
        return elapsed, log.size_bytes, log.end_offset
    finally:
        log.close()


async def _open_broker(directory: Path) -> tuple[float, int]:
    started = time.perf_counter()
    broker = await Broker.open(directory)
    elapsed = time.perf_counter() - started
    try:
        end = await broker.list_offset(TOPIC, 0, LATEST)
    finally:
        await broker.close()
    return elapsed, end or 0


def _check_kept(what: str, acked_last_offset: int, end_offset: int) -> None:
    if end_offset <= acked_last_offset:
        raise RuntimeError(
            f"{what} recovered to end offset {end_offset}, losing appended offset "
            f"{acked_last_offset} (the process crashed, the OS did not)"
        )


def _summary(messages: list[str], root: Path) -> str:
    if not messages:
        return "logged nothing"
    said = " / ".join(message.replace(f"{root}/", "") for message in messages[:2])
    return f"logged: {said}"


def run(settings: Settings) -> Measurement:
    size = settings.scale((1 << 30) - 16 * _MIB, 8 * _MIB)
    root = settings.workdir / "recovery"
    try:
        with _recovery_log() as messages:
            acked = crash("log", root / "partition-log", size, settings.seed)
            log_seconds, log_bytes, log_end = _open_log(root / "partition-log")
            _check_kept("PartitionLog", acked, log_end)
            log_said = _summary(messages, root)
            shutil.rmtree(root / "partition-log")
            messages.clear()
            acked = crash("broker", root / "broker", size, settings.seed)
            broker_seconds, broker_end = asyncio.run(_open_broker(root / "broker"))
            _check_kept("Broker", acked, broker_end)
            broker_said = _summary(messages, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return Measurement(
        figure=Figure(max(log_seconds, broker_seconds), "s"),
        notes=(
            f"PartitionLog.open {log_seconds:.3f} s on {log_bytes / _MIB:,.0f} MiB "
            f"({log_end:,} events; recovery {log_said})",
            f"Broker.open {broker_seconds:.3f} s on a log of the same size (recovery "
            f"{broker_said}); killed with SIGKILL mid-append, page cache warm",
        ),
        details={
            "partition_log_open_s": log_seconds,
            "broker_open_s": broker_seconds,
            "log_bytes": float(log_bytes),
            "log_events": float(log_end),
        },
    )


SCENARIO = Scenario(
    name="recovery",
    title="Open a ~1 GiB log after SIGKILL",
    target=Target(Comparison.BELOW, 2.0, "s"),
    run=run,
    method=__doc__ or "",
)
