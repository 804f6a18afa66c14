"""Walking the whole, valid batches of a segment file: the one loop recovery and compaction share.

:class:`BatchScanner` reads a file region in big chunks (4 MiB: one ``pread`` covers many
batches) and yields each batch that passes :func:`~eventyard.records.read_header` and
:func:`~eventyard.records.check_crc`, with the buffer holding it, so callers slice or
decode it without copying. At the first invalid byte it stops and records why in
:attr:`BatchScanner.damage`: recovery turns that into a cut tail, compaction into a
:class:`~eventyard.errors.LogCorruptionError`.

Per batch, never per record: a header unpack and one CRC-32C call in C.
"""

from __future__ import annotations

from collections.abc import Iterator

from eventyard.errors import CorruptRecordError
from eventyard.records import HEADER_SIZE, BatchHeader, check_crc, read_header
from eventyard.storage.fs import File

__all__ = ["BatchScanner", "ScannedBatch"]

_CHUNK = 4 << 20

ScannedBatch = tuple[int, BatchHeader, bytes, int]
"""``(file_position, header, buffer, start_in_buffer)`` of one valid batch."""


class BatchScanner:
    """Iterate over the valid batches of ``file`` from ``position`` to ``end``.

    After iteration, :attr:`position` is where the valid batches end and :attr:`damage`
    says what is wrong there (``None`` when the region ended cleanly).
    """

    __slots__ = ("_file", "damage", "end", "position")

    def __init__(self, file: File, position: int, end: int) -> None:
        self._file = file
        self.position = position
        self.end = end
        self.damage: str | None = None

    def __iter__(self) -> Iterator[ScannedBatch]:
        file = self._file
        end = self.end
        position = self.position
        buffer = b""
        start = position
        while position < end:
            rel = position - start
            if rel + HEADER_SIZE > len(buffer):
                start, rel = position, 0
                buffer = file.pread(min(_CHUNK, end - position), position)
                if len(buffer) < HEADER_SIZE:
                    self.damage = f"{len(buffer)} trailing bytes, less than a batch header"
                    return
            try:
                header = read_header(buffer, rel)
            except CorruptRecordError as exc:
                detail = str(exc).removeprefix(f"batch at byte {rel} ")
                self.damage = f"the batch at byte {position} {detail}"
                return
            size = header.size
            if rel + size > len(buffer):
                if position + size > end:
                    self.damage = (
                        f"the batch at offset {header.base_offset} needs {size} bytes,"
                        f" {end - position} remain (a torn write)"
                    )
                    return
                start, rel = position, 0
                buffer = file.pread(max(min(_CHUNK, end - position), size), position)
            try:
                check_crc(buffer, rel, header)
            except CorruptRecordError:
                self.damage = f"the batch at offset {header.base_offset} fails its CRC-32C check"
                return
            yield position, header, buffer, rel
            position += size
            self.position = position

    def stop(self, reason: str) -> None:
        """Record that the caller rejected the last batch yielded, for ``reason``."""
        self.damage = reason
