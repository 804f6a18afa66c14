"""Decoding record batches into :class:`~eventyard.records.record.Record` values.

:func:`decode_batch` decodes one batch (checking its header and CRC-32C, decompressing its
records block); :func:`decode_batches` decodes a fetch response's concatenation of batches,
skipping control batches and stopping at a trailing batch the fetch cut short.

Every malformed input raises :class:`~eventyard.errors.CorruptRecordError` naming the batch
position and, inside it, the record index. The checks are cheap but complete: each record's
fields must end exactly where its length says, the records must end exactly at the batch's
end, null lengths must be exactly -1, and a read past the end of the data (an
``IndexError`` inside the loop, which costs nothing until raised) is reported the same way.
Positions only grow while parsing, so together these catch every framing error.

Speed: a consumer decodes several hundred thousand records a second, so the per-record loop
is one function with the common one- and two-byte varints decoded inline; only longer
varints and records with headers call out.
"""

from __future__ import annotations

from eventyard.errors import CorruptRecordError
from eventyard.records.compression import decompress
from eventyard.records.header import (
    CONTROL_FLAG,
    HEADER_SIZE,
    LENGTH_OVERHEAD,
    TIMESTAMP_TYPE_FLAG,
    BatchHeader,
    check_crc,
    read_header,
)
from eventyard.records.record import Header, Record
from eventyard.records.varint import ZIGZAG, decode_varint

__all__ = ["decode_batch", "decode_batches"]

_Buffer = bytes | bytearray | memoryview


def decode_batch(buf: _Buffer, pos: int = 0) -> list[Record]:
    """Decode every record of the batch at ``buf[pos]``, control batches included.

    Checks the header (:func:`~eventyard.records.header.read_header`), the CRC-32C and
    every record's framing. Raises :class:`CorruptRecordError` on any malformed input.
    """
    data = buf if type(buf) is bytes else bytes(buf)
    header = read_header(data, pos)
    check_crc(data, pos, header)
    return _decode(data, pos, header)


def decode_batches(buf: _Buffer) -> list[Record]:
    """Decode the records of every data batch in ``buf``, a fetch response's record set.

    Control batches (transaction markers) are skipped. A trailing batch that ``buf`` holds
    only part of is ignored, as a fetch may cut its last batch at ``max_bytes``. Every
    complete batch is checked as :func:`decode_batch` checks it.
    """
    data = buf if type(buf) is bytes else bytes(buf)
    records: list[Record] = []
    pos = 0
    end = len(data)
    while end - pos >= LENGTH_OVERHEAD:
        length = int.from_bytes(data[pos + 8 : pos + 12], "big", signed=True)
        if length >= 0 and pos + LENGTH_OVERHEAD + length > end:
            break
        header = read_header(data, pos)
        check_crc(data, pos, header)
        if not header.attributes & CONTROL_FLAG:
            records += _decode(data, pos, header)
        pos += header.batch_length + LENGTH_OVERHEAD
    return records


def _decode(data: bytes, pos: int, header: BatchHeader) -> list[Record]:
    """Decode the records of a batch whose header and CRC were checked."""
    start = pos + HEADER_SIZE
    end = pos + header.batch_length + LENGTH_OVERHEAD
    codec = header.attributes & 0x07
    if codec:
        data = decompress(codec, memoryview(data)[start:end])
        start = 0
        end = len(data)
    base_timestamp = header.base_timestamp
    log_append_time = header.max_timestamp if header.attributes & TIMESTAMP_TYPE_FLAG else None
    try:
        records, stop = _decode_records(
            data, start, end, header.record_count, header.base_offset, base_timestamp
        )
    except IndexError:
        raise CorruptRecordError(
            f"batch at byte {pos} (offset {header.base_offset}): a record runs past the end"
            " of the records block"
        ) from None
    except UnicodeDecodeError as exc:
        raise CorruptRecordError(
            f"batch at byte {pos} (offset {header.base_offset}): a header name is not UTF-8"
        ) from exc
    except CorruptRecordError as exc:
        raise CorruptRecordError(
            f"batch at byte {pos} (offset {header.base_offset}): {exc}"
        ) from None
    if stop < end:
        raise CorruptRecordError(
            f"batch at byte {pos} (offset {header.base_offset}): {end - stop} bytes follow"
            f" its {header.record_count} records"
        )
    if stop > end:
        raise CorruptRecordError(
            f"batch at byte {pos} (offset {header.base_offset}): its {header.record_count}"
            f" records run {stop - end} bytes past its end"
        )
    if log_append_time is not None:
        records = [Record(r.offset, log_append_time, r.key, r.value, r.headers) for r in records]
    return records


_KNOWN_HEADER_BLOCKS = 16
"""How many distinct header blocks one batch remembers (binary-mode CloudEvents differ in
every record, so they only ever fill it and then pay the slice alone)."""


def _decode_records(
    data: bytes, pos: int, end: int, count: int, base_offset: int, base_timestamp: int
) -> tuple[list[Record], int]:
    """Decode ``count`` records from ``data[pos:end]``; return them and the end position.

    Raises :class:`CorruptRecordError` (or ``IndexError``, which the caller translates)
    when a record's framing is inconsistent.
    """
    records: list[Record] = []
    append = records.append
    zigzag = ZIGZAG
    start = pos
    known: dict[bytes, tuple[Header, ...]] = {}
    """Header blocks already decoded in this batch, by their bytes: records of one producer
    usually carry the same headers (a structured CloudEvent's one ``content-type``, say),
    and a dictionary lookup costs a tenth of decoding them again."""
    cache = isinstance(data, bytes)
    for index in range(count):
        # Record length (varint, usually one or two bytes). It is not checked against the
        # block here: the fields must end exactly at record_end (checked below), positions
        # only grow, and the last record must end at the block's end (checked by the caller).
        byte = data[pos]
        if byte < 0x80:
            record_end = pos + 1 + zigzag[byte]
            pos += 1
        elif (second := data[pos + 1]) < 0x80:
            record_end = pos + 2 + zigzag[byte - 0x80 + (second << 7)]
            pos += 2
        else:
            length, pos = decode_varint(data, pos)
            record_end = pos + length
        # Attributes (unused), then the timestamp delta (varlong).
        byte = data[pos + 1]
        if byte < 0x80:
            timestamp = base_timestamp + zigzag[byte]
            pos += 2
        else:
            delta, pos = decode_varint(data, pos + 1)
            timestamp = base_timestamp + delta
        # Offset delta.
        byte = data[pos]
        if byte < 0x80:
            offset = base_offset + zigzag[byte]
            pos += 1
        elif (second := data[pos + 1]) < 0x80:
            offset = base_offset + zigzag[byte - 0x80 + (second << 7)]
            pos += 2
        else:
            delta, pos = decode_varint(data, pos)
            offset = base_offset + delta
        # Key: usually null (a single byte 1) or short.
        byte = data[pos]
        if byte == 1:
            key = None
            pos += 1
        else:
            if byte < 0x80:
                size = zigzag[byte]
                pos += 1
            else:
                size, pos = decode_varint(data, pos)
            if size < 0:
                raise CorruptRecordError(f"record {index} has key length {size}")
            key = data[pos : pos + size]
            pos += size
        # Value.
        byte = data[pos]
        if byte < 0x80:
            size = zigzag[byte]
            pos += 1
        elif (second := data[pos + 1]) < 0x80:
            size = zigzag[byte - 0x80 + (second << 7)]
            pos += 2
        else:
            size, pos = decode_varint(data, pos)
        if size >= 0:
            value = data[pos : pos + size]
            pos += size
        elif size == -1:
            value = None
        else:
            raise CorruptRecordError(f"record {index} has value length {size}")
        # Headers: the rest of the record.
        if data[pos] == 0:
            pos += 1
            headers: tuple[Header, ...] = ()
        elif cache and (seen := known.get(block := data[pos:record_end])) is not None:
            headers, pos = seen, record_end
        else:
            headers, pos = _decode_headers(data, pos, record_end, index)
            if cache and pos == record_end and len(known) < _KNOWN_HEADER_BLOCKS:
                known[block] = headers
        if pos != record_end:
            raise CorruptRecordError(
                f"record {index} should end at byte {record_end - start} of the records"
                f" block but its fields end at byte {pos - start}"
            )
        append(Record(offset, timestamp, key, value, headers))
    return records, pos


def _decode_headers(
    data: bytes, pos: int, record_end: int, index: int
) -> tuple[tuple[Header, ...], int]:
    """Decode a record's header count and headers; return them and the position after.

    CloudEvents' binary mode puts half a dozen ``ce_*`` headers on every record, so the
    one-byte varints of counts, name lengths and short value lengths are decoded inline.
    """
    zigzag = ZIGZAG
    byte = data[pos]
    if byte < 0x80:
        count = zigzag[byte]
        pos += 1
    else:
        count, pos = decode_varint(data, pos)
    if count < 0 or count > record_end - pos:
        raise CorruptRecordError(f"record {index} has header count {count}")
    headers: list[Header] = []
    append = headers.append
    for _ in range(count):
        byte = data[pos]
        if byte < 0x80:
            size = zigzag[byte]
            pos += 1
        else:
            size, pos = decode_varint(data, pos)
        end = pos + size
        if size < 0 or end > record_end:
            raise CorruptRecordError(f"record {index} has header name length {size}")
        name = data[pos:end].decode()
        byte = data[end]
        if byte < 0x80:
            size = zigzag[byte]
            pos = end + 1
        else:
            size, pos = decode_varint(data, end)
        end = pos + size
        if size >= 0 and end <= record_end:
            append((name, data[pos:end]))
            pos = end
        elif size == -1:
            append((name, None))
        else:
            raise CorruptRecordError(f"record {index} has header value length {size}")
    return tuple(headers), pos
