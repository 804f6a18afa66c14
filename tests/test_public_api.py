"""The public surface: every package's ``__all__`` is sorted, complete and importable."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "eventyard",
    "eventyard.broker",
    "eventyard.broker.groups",
    "eventyard.cli",
    "eventyard.client",
    "eventyard.errors",
    "eventyard.records",
    "eventyard.storage",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_resolve(name: str) -> None:
    module = importlib.import_module(name)
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == []


@pytest.mark.parametrize("name", PACKAGES)
def test_all_has_no_duplicates(name: str) -> None:
    names = importlib.import_module(name).__all__
    assert len(names) == len(set(names))


def test_top_level_reexports_the_user_api() -> None:
    import eventyard

    for name in ("Broker", "Producer", "Consumer", "SyncBroker", "TopicConfig", "Durability"):
        assert name in eventyard.__all__
    assert eventyard.Broker.__module__.startswith("eventyard.broker")
