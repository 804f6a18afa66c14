"""BatchScanner: valid batches in big reads, and a clear reason where they stop."""

from __future__ import annotations

from pathlib import Path

from eventyard.storage import OSFileSystem
from eventyard.storage.scan import BatchScanner
from tests.storage.batches import make_batch, payload


def write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def scan(path: Path, start: int = 0) -> tuple[list[tuple[int, int]], BatchScanner]:
    file = OSFileSystem().open_read(str(path))
    try:
        scanner = BatchScanner(file, start, file.size())
        found = [(position, header.base_offset) for position, header, _, _ in scanner]
    finally:
        file.close()
    return found, scanner


def test_yields_every_batch_with_its_position(tmp_path: Path) -> None:
    batches = [make_batch(payload(i), payload(i + 1)) for i in range(5)]
    write(tmp_path / "a", b"".join(batches))
    found, scanner = scan(tmp_path / "a")
    size = len(batches[0])
    assert found == [(i * size, 0) for i in range(5)]
    assert (scanner.position, scanner.damage) == (5 * size, None)
    found, _ = scan(tmp_path / "a", start=2 * size)
    assert [position for position, _ in found] == [2 * size, 3 * size, 4 * size]


def test_stops_at_a_torn_batch(tmp_path: Path) -> None:
    batch = make_batch(payload(0))
    write(tmp_path / "a", batch * 3 + batch[:-5])
    found, scanner = scan(tmp_path / "a")
    assert len(found) == 3
    assert scanner.position == 3 * len(batch)
    assert scanner.damage is not None and "torn write" in scanner.damage


def test_stops_at_a_bad_crc_or_a_bad_header(tmp_path: Path) -> None:
    batch = make_batch(payload(0))
    damaged = bytearray(batch)
    damaged[-1] ^= 1
    write(tmp_path / "a", batch + bytes(damaged) + batch)
    found, scanner = scan(tmp_path / "a")
    assert len(found) == 1 and scanner.position == len(batch)
    assert scanner.damage is not None and "CRC-32C" in scanner.damage

    write(tmp_path / "b", batch + b"\x00" * 100)
    found, scanner = scan(tmp_path / "b")
    assert len(found) == 1
    assert scanner.damage is not None and f"byte {len(batch)}" in scanner.damage

    write(tmp_path / "c", batch + b"\x00" * 10)
    _, scanner = scan(tmp_path / "c")
    assert scanner.damage == "10 trailing bytes, less than a batch header"


def test_a_batch_rejected_by_the_caller_is_where_the_scan_ends(tmp_path: Path) -> None:
    batch = make_batch(payload(0))
    write(tmp_path / "a", batch * 4)
    file = OSFileSystem().open_read(str(tmp_path / "a"))
    scanner = BatchScanner(file, 0, file.size())
    for i, _ in enumerate(scanner):
        if i == 2:
            scanner.stop("rejected")
            break
    file.close()
    assert (scanner.position, scanner.damage) == (2 * len(batch), "rejected")
