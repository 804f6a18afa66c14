"""The public surface: every package's ``__all__`` is sorted, complete and importable."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = [
    "eventyard",
    "eventyard.app",
    "eventyard.broker",
    "eventyard.broker.groups",
    "eventyard.cli",
    "eventyard.client",
    "eventyard.errors",
    "eventyard.events",
    "eventyard.records",
    "eventyard.storage",
    "eventyard.testing",
    "eventyard.transports",
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


def test_top_level_all_is_exactly_the_lazy_names() -> None:
    import eventyard

    assert set(eventyard.__all__) == {*eventyard._HOME_OF, "__version__"}


def test_importing_eventyard_loads_no_layer_eagerly() -> None:
    code = (
        "import sys, eventyard; print(sorted(m for m in sys.modules if m.startswith('eventyard.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
