"""The package's public surface is explicit, sorted and importable."""

from __future__ import annotations

import eventyard.storage as storage


def test_all_is_sorted_and_complete() -> None:
    assert storage.__all__ == sorted(storage.__all__)
    for name in storage.__all__:
        assert getattr(storage, name) is not None
    public = {
        name
        for name, value in vars(storage).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("eventyard.")
    }
    assert public <= set(storage.__all__)
