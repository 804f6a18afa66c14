"""Typed events: registration, typed decode, validation errors that name the field, pydantic."""

from __future__ import annotations

import dataclasses

import msgspec
import pydantic
import pytest

from eventyard.errors import ConfigError, EventDecodeError, EventValidationError
from eventyard.events import Envelope, EventRegistry, default_registry, event, new_envelope


class Address(msgspec.Struct):
    city: str
    zip: str


class ListingCreated(msgspec.Struct):
    listing_id: str
    price: int
    address: Address
    tags: list[str] = []


class PriceModel(pydantic.BaseModel):
    listing_id: str
    price: int
    history: list[int] = []


@dataclasses.dataclass
class Viewed:
    listing_id: str


@pytest.fixture
def registry() -> EventRegistry:
    registry = EventRegistry()
    registry.event("listing.created", version=2)(ListingCreated)
    registry.event("listing.priced")(PriceModel)
    registry.event("listing.viewed")(Viewed)
    return registry


def envelope_of(registry: EventRegistry, obj: object) -> Envelope:
    return new_envelope(obj, source="/tests", registry=registry)


def test_names_versions_and_lookup(registry: EventRegistry) -> None:
    assert registry.type_name(ListingCreated) == "listing.created"
    assert registry.version(ListingCreated) == 2
    assert registry.version(PriceModel) == 1
    assert registry.lookup("listing.priced") is PriceModel
    assert registry.lookup("nope") is None
    assert ListingCreated in registry
    assert Address not in registry


@pytest.mark.parametrize(
    "obj",
    [
        ListingCreated("L-1", 100, Address("Lisbon", "1000"), ["sea"]),
        PriceModel(listing_id="L-1", price=5, history=[4, 5]),
        Viewed("L-1"),
    ],
)
def test_typed_round_trip(registry: EventRegistry, obj: object) -> None:
    envelope = envelope_of(registry, obj)
    assert envelope.type == registry.type_name(type(obj))
    assert envelope.dataversion == registry.version(type(obj))
    assert registry.decoder(type(obj))(envelope) == obj


def test_decoders_are_built_once(registry: EventRegistry) -> None:
    assert registry.decoder(ListingCreated) is registry.decoder(ListingCreated)
    assert registry.decoder(ListingCreated) is not registry.decoder(
        ListingCreated, check_type=False
    )


def test_encode_data_is_json(registry: EventRegistry) -> None:
    assert registry.encode_data(Viewed("L-1")) == b'{"listing_id":"L-1"}'
    assert msgspec.json.decode(registry.encode_data(PriceModel(listing_id="a", price=1))) == {
        "listing_id": "a",
        "price": 1,
        "history": [],
    }
    assert registry.encode_data({"not": "registered"}) == b'{"not":"registered"}'


def with_data(registry: EventRegistry, cls: type, data: bytes) -> Envelope:
    return Envelope(
        id="1",
        source="/s",
        type=registry.type_name(cls),
        dataversion=registry.version(cls),
        data=data,
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"listing_id":"L","price":"cheap","address":{"city":"x","zip":"1"}}', r"\$\.price"),
        (b'{"listing_id":"L","price":1,"address":{"city":"x"}}', r"`zip`.*\$\.address"),
        (
            b'{"listing_id":"L","price":1,"address":{"city":"x","zip":"1"},"tags":[1]}',
            r"\$\.tags\[0\]",
        ),
        (b"[]", r"Expected `object`, got `array`"),
    ],
)
def test_validation_errors_name_the_field(
    registry: EventRegistry, data: bytes, reason: str
) -> None:
    decode = registry.decoder(ListingCreated)
    with pytest.raises(EventValidationError, match=reason) as info:
        decode(with_data(registry, ListingCreated, data))
    assert str(info.value).startswith("listing.created v2: ")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"listing_id":"L","price":"cheap"}', r"valid integer.* - at `\$\.price`"),
        (b'{"listing_id":"L","price":1,"history":[1,"x"]}', r"at `\$\.history\[1\]`"),
        (b'{"price":"x"}', r"at `\$\.listing_id` \(and 1 more\)"),
    ],
)
def test_pydantic_validation_errors_name_the_field(
    registry: EventRegistry, data: bytes, reason: str
) -> None:
    with pytest.raises(EventValidationError, match=reason) as info:
        registry.decoder(PriceModel)(with_data(registry, PriceModel, data))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("cls", [ListingCreated, PriceModel])
@pytest.mark.parametrize("data", [b"{oops", b""])
def test_data_that_is_not_json_is_a_decode_error(
    registry: EventRegistry, cls: type, data: bytes
) -> None:
    with pytest.raises(EventDecodeError, match="data is not JSON") as info:
        registry.decoder(cls)(with_data(registry, cls, data))
    assert not isinstance(info.value, EventValidationError)


def test_the_decoder_checks_the_type_unless_told_not_to(registry: EventRegistry) -> None:
    envelope = msgspec.structs.replace(envelope_of(registry, Viewed("L-1")), type="listing.seen")
    with pytest.raises(
        EventValidationError, match=r"expected .*'listing\.viewed', got 'listing\.seen'"
    ):
        registry.decoder(Viewed)(envelope)
    assert registry.decoder(Viewed, check_type=False)(envelope) == Viewed("L-1")


def test_registration_conflicts_are_config_errors(registry: EventRegistry) -> None:
    registry.event("listing.created", version=2)(ListingCreated)
    with pytest.raises(ConfigError, match=r"already registered as 'listing\.created' v2"):
        registry.event("listing.created", version=3)(ListingCreated)
    with pytest.raises(ConfigError, match="already ListingCreated"):
        registry.event("listing.created")(Address)
    with pytest.raises(ConfigError, match="non-empty"):
        registry.event("")
    with pytest.raises(ConfigError, match="version"):
        registry.event("x", version=0)
    with pytest.raises(ConfigError, match="cannot be an event type"):
        registry.event("x")(int)


def test_unregistered_classes_are_config_errors(registry: EventRegistry) -> None:
    for ask in (registry.type_name, registry.version, registry.decoder):
        with pytest.raises(ConfigError, match="Address is not a registered event type"):
            ask(Address)


def test_the_module_level_decorator_uses_the_default_registry() -> None:
    @event("tests.events.registry.default")
    class Pinged(msgspec.Struct):
        n: int

    assert default_registry.type_name(Pinged) == "tests.events.registry.default"
    envelope = new_envelope(Pinged(1), source="/tests")
    assert default_registry.decoder(Pinged)(envelope) == Pinged(1)
