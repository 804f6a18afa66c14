"""The groups package's public surface is explicit, sorted and complete."""

from __future__ import annotations

import eventyard.broker.groups as groups
from eventyard.broker.groups import (
    assignors,
    coordinator,
    group,
    lag,
    member,
    membership,
    offsets,
    protocol,
    rebalance,
)

INTERNAL = {"Group", "Member", "OffsetStore", "Rebalancer"}
"""Mutable state and machinery owned by the coordinator, never handed to callers."""


def _isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions (ruff's RUF022 order)."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted() -> None:
    assert groups.__all__ == sorted(groups.__all__, key=_isort_key)


def test_every_public_name_of_the_modules_is_exported() -> None:
    modules = (assignors, coordinator, group, lag, member, membership, offsets, protocol, rebalance)
    for module in modules:
        for name in module.__all__:
            if name not in INTERNAL:
                assert name in groups.__all__, f"{module.__name__}.{name} is not exported"
                assert getattr(groups, name) is getattr(module, name)
