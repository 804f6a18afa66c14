"""The package's public surface is explicit, sorted and importable."""

from __future__ import annotations

import eventyard.broker as broker


def test_all_is_sorted_and_complete() -> None:
    # isort order, as ruff's RUF022 keeps it: constants first, then classes and functions.
    assert broker.__all__ == sorted(broker.__all__, key=lambda name: (not name.isupper(), name))
    for name in broker.__all__:
        assert getattr(broker, name) is not None
    public = {
        name
        for name, value in vars(broker).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("eventyard.broker.")
        and not getattr(value, "__module__", "").startswith("eventyard.broker.groups")
    }
    assert public <= set(broker.__all__)
