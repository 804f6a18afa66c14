"""The public surface of eventyard.records: complete, sorted, and free of asyncio."""

from __future__ import annotations

import subprocess
import sys

import eventyard.records as records

CONTRACT = {
    # ARCHITECTURE.md's eventyard.records section, plus encode_batch and the Header alias.
    "BatchBuilder",
    "BatchHeader",
    "Compression",
    "HEADER_SIZE",
    "Header",
    "Record",
    "TimestampType",
    "check_crc",
    "decode_batch",
    "decode_batches",
    "encode_batch",
    "read_header",
    "set_base_offset",
    "split_batches",
}


def test_all_is_the_contract_sorted_and_importable() -> None:
    assert set(records.__all__) == CONTRACT
    assert records.__all__ == sorted(records.__all__, key=lambda n: (not n.isupper(), n))
    for name in records.__all__:
        assert getattr(records, name) is not None


def test_header_size_is_61() -> None:
    assert records.HEADER_SIZE == 61


def test_importing_records_does_not_import_asyncio() -> None:
    # A fresh interpreter: the test process itself has asyncio loaded by pytest-asyncio.
    code = "import sys, eventyard.records; print('asyncio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
