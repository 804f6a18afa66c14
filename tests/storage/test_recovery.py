"""Recovery: torn tails are cut with a warning, acknowledged data survives, damage is named."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from eventyard.errors import DiskFullError, LogCorruptionError, StorageError
from eventyard.records import decode_batches, split_batches
from eventyard.storage import LogConfig, OSFileSystem, PartitionLog
from eventyard.storage.recovery import recover_log
from tests.storage.batches import make_batch, payload, values_in
from tests.storage.faultfs import FaultFileSystem

SMALL = LogConfig(segment_bytes=2048, index_interval_bytes=256)
TINY = LogConfig(segment_bytes=1024, index_interval_bytes=128)


def all_values(log: PartitionLog) -> list[tuple[int, bytes | None]]:
    out: list[tuple[int, bytes | None]] = []
    offset = log.start_offset
    while offset < log.end_offset:
        records = decode_batches(log.read(offset, 1 << 20))
        out += [(r.offset, r.value) for r in records]
        offset = records[-1].offset + 1
    return out


def append_numbered(log: PartitionLog, count: int = 2) -> tuple[int, int]:
    offset = log.end_offset
    return log.append(make_batch(*(payload(offset + i) for i in range(count))))


def expected(end: int) -> list[tuple[int, bytes | None]]:
    return [(i, payload(i)) for i in range(end)]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "eventyard.storage" and r.levelno == logging.WARNING
    ]


def test_crash_at_every_byte_of_an_append(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    torn = make_batch(payload(6), payload(7))
    for cut in range(1, len(torn)):
        directory = str(tmp_path / f"cut-{cut}")
        fs = FaultFileSystem(real_sync=False)
        log = PartitionLog.open(directory, SMALL, fs)
        for _ in range(3):
            append_numbered(log)
        assert log.flush() == 6
        fs.crash_after(cut)
        with pytest.raises(StorageError):
            log.append(torn)
        assert fs.crashed
        log.close()
        assert os.path.getsize(os.path.join(directory, f"{0:020d}.log")) > 0

        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="eventyard.storage"):
            log = PartitionLog.open(directory, SMALL, FaultFileSystem(real_sync=False))
        assert all_values(log) == expected(6), f"cut at byte {cut}"
        assert log.end_offset == 6
        messages = warnings_of(caplog)
        assert len(messages) == 1 and "dropped offsets from 6 on" in messages[0]
        assert f"({cut} bytes after byte " in messages[0]
        assert log.append(make_batch(payload(6))) == (6, 6)
        log.close()
        shutil.rmtree(directory)


def run_workload(log: PartitionLog, acked: list[int]) -> None:
    """Appends with a flush every third one and rolls; ``acked`` gets each durable end."""
    for i in range(24):
        append_numbered(log, 1 + i % 3)
        if i % 3 == 2:
            acked.append(log.flush())


def test_crash_anywhere_in_a_workload_of_appends_flushes_and_rolls(tmp_path: Path) -> None:
    probe = FaultFileSystem(real_sync=False)
    probe_log = PartitionLog.open(str(tmp_path / "probe"), TINY, probe)
    probe.crash_after(1 << 30)
    run_workload(probe_log, [])
    total = (1 << 30) - (probe.state.budget or 0)
    probe_log.close()
    assert total > 2 * TINY.segment_bytes

    for cut in range(0, total, 23):
        directory = str(tmp_path / f"cut-{cut}")
        fs = FaultFileSystem(real_sync=False)
        log = PartitionLog.open(directory, TINY, fs)
        fs.crash_after(cut)
        acked: list[int] = [0]
        with pytest.raises(StorageError):
            run_workload(log, acked)
        log.close()
        log = PartitionLog.open(directory, TINY, FaultFileSystem(real_sync=False))
        values = all_values(log)
        assert values[: acked[-1]] == expected(acked[-1]), f"cut at byte {cut}"
        assert values == expected(log.end_offset)
        log.close()
        shutil.rmtree(directory)


def test_fsync_failure_poisons_the_log_and_loses_nothing_acknowledged(tmp_path: Path) -> None:
    fs = FaultFileSystem()
    log = PartitionLog.open(str(tmp_path), SMALL, fs)
    for _ in range(5):
        append_numbered(log)
    assert log.flush() == 10
    append_numbered(log)
    fs.state.fail_fsync = True
    with pytest.raises(StorageError, match="fsync failed"):
        log.flush()
    assert log.durable_offset == 10
    with pytest.raises(StorageError, match="reopen it"):
        append_numbered(log)
    with pytest.raises(StorageError, match="reopen it"):
        log.flush()
    log.close()
    log = PartitionLog.open(str(tmp_path), SMALL)
    assert all_values(log)[:10] == expected(10)
    assert all_values(log) == expected(log.end_offset)
    log.close()


def test_disk_full_append_is_cut_back_and_the_log_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fs = FaultFileSystem()
    log = PartitionLog.open(str(tmp_path), SMALL, fs)
    append_numbered(log)
    append_numbered(log)
    size = log.size_bytes
    fs.disk_full_after(17)
    with pytest.raises(DiskFullError, match="no space left"):
        append_numbered(log)
    assert (log.end_offset, log.size_bytes) == (4, size)
    with pytest.raises(DiskFullError):
        append_numbered(log)
    fs.free_space()
    assert append_numbered(log) == (4, 5)
    assert log.flush() == 6
    log.close()
    with caplog.at_level(logging.WARNING, logger="eventyard.storage"):
        log = PartitionLog.open(str(tmp_path), SMALL)
    assert warnings_of(caplog) == []
    assert all_values(log) == expected(6)
    log.close()


def test_disk_full_at_any_byte_of_a_workload_loses_nothing_acknowledged(tmp_path: Path) -> None:
    for cut in range(0, 2_600, 37):
        directory = str(tmp_path / f"cut-{cut}")
        fs = FaultFileSystem(real_sync=False)
        log = PartitionLog.open(directory, TINY, fs)
        fs.disk_full_after(cut)
        acked = [0]
        poisoned = False
        for i in range(24):
            try:
                append_numbered(log, 1 + i % 3)
                if i % 3 == 2:
                    acked.append(log.flush())
            except DiskFullError:
                continue
            except StorageError as exc:
                assert "reopen" in str(exc)
                poisoned = True
                break
        fs.free_space()
        if not poisoned:
            append_numbered(log)
            acked.append(log.flush())
        log.close()
        log = PartitionLog.open(directory, TINY, FaultFileSystem(real_sync=False))
        values = all_values(log)
        assert values[: acked[-1]] == expected(acked[-1]), f"disk full at byte {cut}"
        assert values == expected(log.end_offset)
        log.close()
        shutil.rmtree(directory)


def test_disk_full_while_rolling_leaves_the_log_usable(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=1024, index_interval_bytes=64)
    fs = FaultFileSystem()
    log = PartitionLog.open(str(tmp_path), config, fs)
    while log.size_bytes < 900:
        append_numbered(log)
    end = log.end_offset
    fs.disk_full_after(0)  # the roll's index write hits ENOSPC
    with pytest.raises(DiskFullError, match="rolling a new segment"):
        append_numbered(log, 5)
    assert log.end_offset == end
    assert sorted(p.name for p in tmp_path.glob("*.log")) == [f"{0:020d}.log"]
    fs.free_space()
    assert append_numbered(log, 5) == (end, end + 4)
    assert log.flush() == end + 5
    log.close()
    log = PartitionLog.open(str(tmp_path), config)
    assert all_values(log) == expected(end + 5)
    assert log.offset_for_time(1_004) == end + 4
    log.close()


def test_garbage_after_the_last_batch_is_cut(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = PartitionLog.open(str(tmp_path))
    for _ in range(3):
        append_numbered(log)
    log.close()
    with open(tmp_path / f"{0:020d}.log", "ab") as file:
        file.write(b"\x00" * 100)
    with caplog.at_level(logging.WARNING, logger="eventyard.storage"):
        log = PartitionLog.open(str(tmp_path))
    assert all_values(log) == expected(6)
    assert "dropped offsets from 6 on (100 bytes" in warnings_of(caplog)[0]
    log.close()


def damage(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x55
    path.write_bytes(bytes(data))


def test_damage_in_a_closed_segment_is_reported_with_its_range(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), SMALL)
    for _ in range(100):
        append_numbered(log)
    log.close()
    first = tmp_path / f"{0:020d}.log"
    batches = split_batches(first.read_bytes())
    position, header = batches[len(batches) // 2]
    damage(first, position + 70)

    log = PartitionLog.open(str(tmp_path), SMALL)
    assert values_in(log.read(0, 10))[0] == (0, payload(0))
    with pytest.raises(LogCorruptionError) as info:
        log.read(header.base_offset, 1 << 20)
    assert f"offsets {header.base_offset} to " in str(info.value)
    assert "CRC-32C" in str(info.value)
    assert "00000000000000000000.log" in str(info.value)
    later = batches[-1][1].last_offset + 1
    assert values_in(log.read(later, 10))[0] == (later, payload(later))
    log.close()


def test_damaged_batch_header_in_a_closed_segment(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), SMALL)
    for _ in range(100):
        append_numbered(log)
    log.close()
    first = tmp_path / f"{0:020d}.log"
    batches = split_batches(first.read_bytes())
    position, header = batches[3]
    damage(first, position + 16)  # the magic byte
    log = PartitionLog.open(str(tmp_path), SMALL)
    with pytest.raises(LogCorruptionError, match=f"offsets {header.base_offset} to"):
        log.read(header.base_offset + 1, 100)
    log.close()


def test_durable_data_missing_is_corruption_not_a_torn_tail(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path))
    for _ in range(3):
        append_numbered(log)
    log.close()
    os.truncate(tmp_path / f"{0:020d}.log", 10)
    with pytest.raises(LogCorruptionError, match="were durable"):
        PartitionLog.open(str(tmp_path))


def test_missing_recovery_point_scans_everything(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), SMALL)
    for _ in range(60):
        append_numbered(log)
    log.close()
    os.remove(tmp_path / "recovery.checkpoint")
    for name in os.listdir(tmp_path):
        if name.endswith(".index"):
            os.remove(tmp_path / name)
    log = PartitionLog.open(str(tmp_path), SMALL)
    assert all_values(log) == expected(120)
    assert values_in(log.read(77, 1))[1] == (77, payload(77))
    log.close()


def test_lost_index_of_a_closed_segment_is_rebuilt(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), SMALL)
    for _ in range(60):
        append_numbered(log)
    log.close()
    os.remove(tmp_path / f"{0:020d}.index")
    os.remove(tmp_path / f"{0:020d}.timeindex")
    log = PartitionLog.open(str(tmp_path), SMALL)
    assert values_in(log.read(11, 1)) == [(10, payload(10)), (11, payload(11))]
    assert log.offset_for_time(1_001) == 1
    log.close()
    assert (tmp_path / f"{0:020d}.index").exists()


def test_orphan_and_temporary_files_are_removed(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), SMALL)
    for _ in range(3):
        append_numbered(log)
    log.close()
    for name in (
        f"{99:020d}.index",
        f"{5:020d}.log.cleaned",
        f"{7:020d}.log.deleted",
        "recovery.checkpoint.tmp",
    ):
        (tmp_path / name).write_bytes(b"junk")
    (tmp_path / "unrelated.txt").write_bytes(b"kept")
    log = PartitionLog.open(str(tmp_path), SMALL)
    assert sorted(os.listdir(tmp_path)) == [
        f"{0:020d}.index",
        f"{0:020d}.log",
        f"{0:020d}.timeindex",
        "recovery.checkpoint",
        "unrelated.txt",
    ]
    assert all_values(log) == expected(6)
    log.close()


def test_open_on_an_unusable_directory_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(StorageError, match="cannot open partition log"):
        PartitionLog.open(str(blocker / "p0"), SMALL, OSFileSystem())


def test_damage_in_an_unflushed_segment_drops_it_and_every_later_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = PartitionLog.open(str(tmp_path), TINY)
    log.flush()  # the recovery point: segment 0, byte 0
    while len(list(tmp_path.glob("*.log"))) < 4:
        append_numbered(log)
    log.close()
    os.remove(tmp_path / "recovery.checkpoint")  # as if the crash came before any flush
    names = sorted(p.name for p in tmp_path.glob("*.log"))
    second = tmp_path / names[1]
    position, header = split_batches(second.read_bytes())[-1]
    damage(second, position + 30)
    with caplog.at_level(logging.WARNING, logger="eventyard.storage"):
        log = PartitionLog.open(str(tmp_path), TINY)
    assert log.end_offset == header.base_offset
    assert all_values(log) == expected(header.base_offset)
    assert sorted(p.name for p in tmp_path.glob("*.log")) == names[:2]
    (message,) = warnings_of(caplog)
    assert f"dropped offsets from {header.base_offset} on" in message
    assert "and 2 later segment(s)" in message and "CRC-32C" in message
    log.close()


def test_damage_found_while_rebuilding_a_lost_index_is_corruption(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), SMALL)
    for _ in range(60):
        append_numbered(log)
    log.close()
    os.remove(tmp_path / f"{0:020d}.index")
    first = tmp_path / f"{0:020d}.log"
    position, header = split_batches(first.read_bytes())[4]
    damage(first, position + 40)
    log = PartitionLog.open(str(tmp_path), SMALL)
    for _ in range(2):  # the log stays as it was: the same error again, not a shorter log
        with pytest.raises(LogCorruptionError, match=f"offsets {header.base_offset} to"):
            log.read(0, 100)
    assert log.size_bytes == sum(p.stat().st_size for p in tmp_path.glob("*.log"))
    log.close()


def test_one_open_reports_each_problem_once_however_often_reads_retry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = PartitionLog.open(str(tmp_path), SMALL)
    for _ in range(100):
        append_numbered(log)
    end = log.end_offset
    log.close()
    names = sorted(p.name for p in tmp_path.glob("*.log"))
    assert len(names) > 2
    first = tmp_path / names[0]
    position, header = split_batches(first.read_bytes())[5]
    damage(first, position + 70)  # in a closed segment recovery trusts unread
    with open(tmp_path / names[-1], "ab") as file:
        file.write(b"\x00" * 100)  # and a torn tail

    with caplog.at_level(logging.INFO, logger="eventyard"):
        log = PartitionLog.open(str(tmp_path), SMALL)
        errors: list[str] = []
        for _ in range(20):  # a caller retrying, e.g. over ever shorter ranges
            with pytest.raises(LogCorruptionError) as info:
                log.read(header.base_offset, 1 << 20)
            errors.append(str(info.value))
        log.close()
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) == 1, [r.getMessage() for r in records]
    assert records[0].name == "eventyard.storage"
    assert f"dropped offsets from {end} on (100 bytes after byte " in records[0].getMessage()
    assert len(set(errors)) == 1 and f"offsets {header.base_offset} to " in errors[0]


def test_recovery_counts_what_it_scanned(tmp_path: Path) -> None:
    log = PartitionLog.open(str(tmp_path), SMALL)
    for _ in range(100):
        append_numbered(log)
    log.close()
    recovered = recover_log(OSFileSystem(), str(tmp_path), SMALL.index_interval_bytes, 0)
    for segment in [*recovered.sealed, recovered.active]:
        segment.release()
    assert len(recovered.sealed) > 1
    assert (recovered.scanned_segments, recovered.scanned_bytes) == (1, 0)  # a clean stop
    os.remove(tmp_path / "recovery.checkpoint")
    recovered = recover_log(OSFileSystem(), str(tmp_path), SMALL.index_interval_bytes, 0)
    for segment in [*recovered.sealed, recovered.active]:
        segment.release()
    total = sum(p.stat().st_size for p in tmp_path.glob("*.log"))
    assert (recovered.scanned_segments, recovered.scanned_bytes) == (
        len(recovered.sealed) + 1,
        total,
    )
