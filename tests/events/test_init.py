"""The public surface of eventyard.events: complete, sorted, and free of asyncio."""

from __future__ import annotations

import subprocess
import sys

import eventyard.events as events

CONTRACT = {
    "EncodedRecord",
    "Envelope",
    "EventRegistry",
    "Mode",
    "SPECVERSION",
    "STRUCTURED_CONTENT_TYPE",
    "Upcaster",
    "decode",
    "default_registry",
    "encode",
    "event",
    "is_json_content_type",
    "new_envelope",
    "new_event_id",
    "rfc3339_now",
    "upcaster",
}


def test_all_is_the_contract_sorted_and_importable() -> None:
    assert set(events.__all__) == CONTRACT
    assert events.__all__ == sorted(events.__all__, key=lambda n: (not n.isupper(), n))
    for name in events.__all__:
        assert getattr(events, name) is not None


def test_importing_events_imports_neither_asyncio_nor_optional_libraries() -> None:
    # A fresh interpreter: the test process itself has asyncio loaded by pytest-asyncio.
    code = (
        "import sys, eventyard.events; "
        "print(sorted(m for m in ('asyncio', 'pydantic', 'cloudevents') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
