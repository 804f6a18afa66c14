"""Upcasters: a 1->2->3 chain runs in order, a missing step or newer data is named, and
the fast path (data at the current version) never calls an upcaster."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from eventyard.errors import ConfigError, EventDecodeError, EventValidationError
from eventyard.events import Envelope, EventRegistry


class ListingCreatedV3(msgspec.Struct):
    listing_id: str
    price_cents: int
    currency: str


def at(version: int, data: bytes) -> Envelope:
    return Envelope(id="1", source="/s", type="listing.created", dataversion=version, data=data)


@pytest.fixture
def calls() -> list[str]:
    return []


@pytest.fixture
def registry(calls: list[str]) -> EventRegistry:
    registry = EventRegistry()

    @registry.upcaster("listing.created", from_version=2)
    def add_currency(data: dict[str, Any]) -> dict[str, Any]:
        calls.append("2->3")
        return {**data, "currency": "EUR"}

    registry.event("listing.created", version=3)(ListingCreatedV3)

    @registry.upcaster("listing.created", from_version=1)
    def price_to_cents(data: dict[str, Any]) -> dict[str, Any]:
        calls.append("1->2")
        price = data.pop("price")
        return {**data, "price_cents": price * 100}

    return registry


def test_a_chain_runs_in_order(registry: EventRegistry, calls: list[str]) -> None:
    decode = registry.decoder(ListingCreatedV3)
    old = at(1, b'{"listing_id":"L-1","price":12}')
    assert decode(old) == ListingCreatedV3("L-1", 1200, "EUR")
    assert calls == ["1->2", "2->3"]
    calls.clear()
    assert decode(at(2, b'{"listing_id":"L-1","price_cents":5}')) == ListingCreatedV3(
        "L-1", 5, "EUR"
    )
    assert calls == ["2->3"]


def test_current_data_skips_the_upcasters(registry: EventRegistry, calls: list[str]) -> None:
    data = b'{"listing_id":"L-1","price_cents":5,"currency":"USD"}'
    assert registry.decoder(ListingCreatedV3)(at(3, data)) == ListingCreatedV3("L-1", 5, "USD")
    assert calls == []


def test_upcast_data_is_validated_like_current_data(registry: EventRegistry) -> None:
    with pytest.raises(EventValidationError, match=r"listing.created v3: .*\$\.price_cents"):
        registry.decoder(ListingCreatedV3)(at(1, b'{"listing_id":"L-1","price":"12"}'))


def test_a_missing_step_names_the_gap(calls: list[str]) -> None:
    registry = EventRegistry()
    registry.event("listing.created", version=3)(ListingCreatedV3)

    @registry.upcaster("listing.created", from_version=1)
    def step(data: dict[str, Any]) -> dict[str, Any]:
        calls.append("1->2")
        return data

    with pytest.raises(
        EventValidationError,
        match=r"listing.created: no upcaster from version 2 to 3 \(data is version 1",
    ):
        registry.decoder(ListingCreatedV3)(at(1, b"{}"))
    assert calls == []


def test_newer_data_cannot_be_downcast(registry: EventRegistry) -> None:
    with pytest.raises(EventValidationError, match=r"data version 4 is newer .* version 3"):
        registry.decoder(ListingCreatedV3)(at(4, b"{}"))


def test_old_data_must_be_a_json_object(registry: EventRegistry) -> None:
    with pytest.raises(EventValidationError, match="JSON array, not an object"):
        registry.decoder(ListingCreatedV3)(at(1, b"[1]"))
    with pytest.raises(EventDecodeError, match="data is not JSON"):
        registry.decoder(ListingCreatedV3)(at(1, b"{"))


def test_an_upcaster_must_return_a_dict() -> None:
    registry = EventRegistry()
    registry.event("listing.created", version=2)(ListingCreatedV3)

    def broken(data: dict[str, Any]) -> Any:
        return [data]

    registry.upcaster("listing.created", from_version=1)(broken)
    with pytest.raises(TypeError, match=r"\(listing.created 1->2\) returned list, not a dict"):
        registry.decoder(ListingCreatedV3)(at(1, b"{}"))


def test_registration_errors(registry: EventRegistry) -> None:
    with pytest.raises(ConfigError, match="already has an upcaster from version 1"):
        registry.upcaster("listing.created", from_version=1)(lambda data: data)
    with pytest.raises(ConfigError, match="from_version must be an integer >= 1"):
        registry.upcaster("listing.created", from_version=0)(lambda data: data)
