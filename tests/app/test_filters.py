"""Content filters: each operator, every kind of event object, envelope attributes, bad specs."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import msgspec
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventyard.app.filters import Filter, compile_filter
from eventyard.errors import ConfigError


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class SellerStruct(msgspec.Struct):
    country: str
    rating: float


class ListingStruct(msgspec.Struct):
    title: str
    price: int
    seller: SellerStruct
    tags: list[str]
    discount: float | None = None
    color: Color = Color.RED


@dataclasses.dataclass
class SellerData:
    country: str
    rating: float


@dataclasses.dataclass
class ListingData:
    title: str
    price: int
    seller: SellerData
    tags: list[str]
    discount: float | None = None
    color: Color = Color.RED


class SellerModel(pydantic.BaseModel):
    country: str
    rating: float


class ListingModel(pydantic.BaseModel):
    title: str
    price: int
    seller: SellerModel
    tags: list[str]
    discount: float | None = None
    color: Color = Color.RED


class Envelope(msgspec.Struct):
    id: str
    type: str
    source: str
    subject: str | None = None
    extensions: dict[str, str] = {}


LISTING: dict[str, Any] = {
    "title": "Vintage lamp",
    "price": 40,
    "seller": {"country": "FR", "rating": 4.5},
    "tags": ["home", "sale"],
}


def forms() -> list[Any]:
    seller = LISTING["seller"]
    return [
        LISTING,
        ListingStruct(
            LISTING["title"], LISTING["price"], SellerStruct(**seller), list(LISTING["tags"])
        ),
        ListingData(
            LISTING["title"], LISTING["price"], SellerData(**seller), list(LISTING["tags"])
        ),
        ListingModel.model_validate(LISTING),
    ]


FORM_IDS = ["mapping", "msgspec", "dataclass", "pydantic"]
ENVELOPE = Envelope("1", "listing.created", "shop", extensions={"region": "eu"})


@pytest.mark.parametrize("event", forms(), ids=FORM_IDS)
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"title": "Vintage lamp"}, True),
        ({"title": "vintage lamp"}, False),
        ({"price": 40}, True),
        ({"price": 40.0}, True),
        ({"price": "40"}, False),
        ({"price": [10, 40]}, True),
        ({"seller.country": ["DE", "FR"]}, True),
        ({"seller.country": ["DE", "IT"]}, False),
        ({"seller.rating": {"numeric": [">=", 4.5]}}, True),
        ({"seller.rating": {"numeric": [">", 4.5]}}, False),
        ({"price": {"numeric": [">", 0, "<=", 40]}}, True),
        ({"price": {"numeric": [">", 0, "<", 40]}}, False),
        ({"price": {"numeric": ["=", 40]}}, True),
        ({"title": {"prefix": "Vintage"}}, True),
        ({"title": {"prefix": "Modern"}}, False),
        ({"title": {"suffix": "lamp"}}, True),
        ({"title": {"suffix": "chair"}}, False),
        ({"title": {"prefix": "Vin", "suffix": "lamp"}}, True),
        ({"title": {"prefix": "Vin", "suffix": "chair"}}, False),
        ({"seller.country": {"anything-but": "XX"}}, True),
        ({"seller.country": {"anything-but": ["FR", "XX"]}}, False),
        ({"title": {"anything-but": {"prefix": "Modern"}}}, True),
        ({"title": {"anything-but": {"suffix": "lamp"}}}, False),
        ({"tags": "sale"}, True),
        ({"tags": {"prefix": "ho"}}, True),
        ({"tags": "garden"}, False),
        ({"seller": {"exists": True}}, True),
        ({"seller.country": {"exists": True}}, True),
        ({"seller.email": {"exists": True}}, False),
        ({"seller.email": {"exists": False}}, True),
        ({"seller.email": "x"}, False),
        ({"seller.email": {"anything-but": "x"}}, False),
        ({"discount": {"exists": False}}, True),
        ({"title.upper.x": {"exists": True}}, False),
        ({"title": ["Chair", {"prefix": "Vint"}]}, True),
        ({"title": "Vintage lamp", "price": {"numeric": ["<", 10]}}, False),
        ({"title": "Vintage lamp", "price": 40, "tags": "home"}, True),
        ({}, True),
    ],
)
def test_operators_match_every_kind_of_event(
    event: Any, spec: dict[str, Any], expected: bool
) -> None:
    assert compile_filter(spec)(event, ENVELOPE) is expected


def test_booleans_equal_only_booleans() -> None:
    assert compile_filter({"flag": True})({"flag": True})
    assert not compile_filter({"flag": True})({"flag": 1})
    assert not compile_filter({"count": 1})({"count": True})
    assert not compile_filter({"count": {"numeric": [">", 0]}})({"count": True})


def test_null_equals_null_but_does_not_exist() -> None:
    assert compile_filter({"discount": None})({"discount": None})
    assert not compile_filter({"discount": None})({})
    assert compile_filter({"discount": {"exists": False}})({"discount": None})
    assert not compile_filter({"discount": {"anything-but": 5}})({"discount": None})
    assert compile_filter({"discount": [None, 5]})({"discount": 5})


def test_enum_fields_compare_by_value() -> None:
    event = ListingStruct("t", 1, SellerStruct("FR", 1.0), [], color=Color.BLUE)
    assert compile_filter({"color": "blue"})(event)
    assert compile_filter({"color": {"anything-but": "red"}})(event)
    assert not compile_filter({"color": ["red"]})(event)


def test_paths_through_lists_reach_every_element() -> None:
    order = {"lines": [{"sku": "A1", "qty": 1}, {"sku": "B2", "qty": 9}]}
    assert compile_filter({"lines.sku": "B2"})(order)
    assert compile_filter({"lines.qty": {"numeric": [">", 5]}})(order)
    assert not compile_filter({"lines.sku": {"prefix": "C"}})(order)
    assert not compile_filter({"lines.colour": {"exists": True}})(order)
    assert compile_filter({"lines.colour": {"exists": False}})(order)


def test_dollar_fields_read_the_envelope_and_its_extensions() -> None:
    event = forms()[1]
    assert compile_filter({"$type": "listing.created"})(event, ENVELOPE)
    assert compile_filter({"$type": {"prefix": "listing."}, "$source": "shop"})(event, ENVELOPE)
    assert compile_filter({"$region": "eu"})(event, ENVELOPE)
    assert compile_filter({"$extensions.region": "eu"})(event, ENVELOPE)
    assert not compile_filter({"$region": "us"})(event, ENVELOPE)
    assert compile_filter({"$subject": {"exists": False}})(event, ENVELOPE)
    assert compile_filter({"$partner": {"exists": False}})(event, ENVELOPE)


def test_envelope_attributes_are_absent_without_an_envelope() -> None:
    assert not compile_filter({"$type": "listing.created"})(LISTING)
    assert compile_filter({"$type": {"exists": False}})(LISTING)


def test_a_mapping_envelope_works_too() -> None:
    envelope = {"type": "listing.created", "extensions": {"region": "eu"}}
    assert compile_filter({"$type": "listing.created", "$region": "eu"})(None, envelope)


def test_envelope_only_filters_say_so() -> None:
    assert compile_filter({"$type": "x", "$source": "y"}).envelope_only
    assert not compile_filter({"$type": "x", "price": 1}).envelope_only
    only = compile_filter({"$type": "x"})
    assert only(None, {"type": "x"})
    assert only.fields == ("$type",)
    assert repr(only) == "Filter(fields=['$type'])"
    assert isinstance(only, Filter)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"title": {"prefx": "a"}}, r"field 'title': unknown operator 'prefx'"),
        ({"title": {}}, r"field 'title': an operator object needs an operator"),
        ({"title": {"prefix": 3}}, r"field 'title', operator 'prefix': expected a string"),
        ({"title": {"suffix": None}}, r"field 'title', operator 'suffix': expected a string"),
        ({"n": {"numeric": [">"]}}, r"field 'n', operator 'numeric': expected pairs"),
        ({"n": {"numeric": []}}, r"field 'n', operator 'numeric': expected pairs"),
        ({"n": {"numeric": 5}}, r"field 'n', operator 'numeric': expected pairs"),
        ({"n": {"numeric": ["~", 1]}}, r"field 'n', operator 'numeric': unknown comparison '~'"),
        ({"n": {"numeric": [">", "1"]}}, r"field 'n', operator 'numeric': '>' needs a finite"),
        ({"n": {"numeric": [">", True]}}, r"field 'n', operator 'numeric': '>' needs a finite"),
        ({"n": {"numeric": ["<", float("nan")]}}, r"operator 'numeric': '<' needs a finite"),
        ({"n": {"exists": "yes"}}, r"field 'n', operator 'exists': expected true or false"),
        ({"n": {"anything-but": []}}, r"field 'n', operator 'anything-but': the list is empty"),
        ({"n": {"anything-but": {"numeric": [">", 1]}}}, r"'anything-but': an object must be"),
        ({"n": {"anything-but": [{"prefix": "a"}]}}, r"'anything-but': expected a string"),
        ({"n": {"anything-but": {"prefix": 1}}}, r"field 'n', operator 'prefix'"),
        ({"n": []}, r"field 'n': the list of allowed values is empty"),
        ({"n": [1, {"wild": "x"}]}, r"field 'n': unknown operator 'wild'"),
        ({"n": [object()]}, r"field 'n', list item: expected a string, number"),
        ({"n": b"bytes"}, r"field 'n', value: expected a string, number"),
        ({"n": float("inf")}, r"field 'n', value: inf is not a finite number"),
        ({"a..b": 1}, r"field 'a..b': expected dotted names"),
        ({"": 1}, r"field '': expected dotted names"),
        ({"$": 1}, r"field '\$': expected dotted names"),
        ({"a.$b": 1}, r"field 'a.\$b': expected dotted names"),
        ({3: 1}, r"field 3: field paths must be strings"),
    ],
)
def test_bad_specs_name_the_field_and_the_operator(spec: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        compile_filter(spec)


def test_a_spec_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="a filter must be a mapping"):
        compile_filter([("a", 1)])  # type: ignore[arg-type]


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.text(max_size=8),
)
names = st.text(alphabet="abcxyz_", min_size=1, max_size=4)


@given(document=st.dictionaries(names, scalars, min_size=1, max_size=6), data=st.data())
def test_a_value_taken_from_a_document_matches_it(document: dict[str, Any], data: Any) -> None:
    field = data.draw(st.sampled_from(sorted(document)))
    assert compile_filter({field: document[field]})(document)
    assert compile_filter({field: [document[field]]})(document)
    assert compile_filter({f"outer.{field}": document[field]})({"outer": document})


@given(value=scalars, others=st.lists(scalars, min_size=1, max_size=4))
def test_anything_but_is_the_complement_of_in_for_present_values(
    value: Any, others: list[Any]
) -> None:
    document = {"f": value}
    if value is None:
        assert not compile_filter({"f": {"anything-but": others}})(document)
    else:
        inside = compile_filter({"f": others})(document)
        assert compile_filter({"f": {"anything-but": others}})(document) is not inside


comparisons = st.sampled_from(["<", "<=", "=", ">=", ">"])
numbers = st.one_of(
    st.integers(-100, 100), st.floats(min_value=-100, max_value=100, allow_nan=False)
)


@given(
    value=numbers,
    bounds=st.lists(st.tuples(comparisons, numbers), min_size=1, max_size=3),
)
def test_numeric_ranges_agree_with_python_comparisons(
    value: float, bounds: list[tuple[str, float]]
) -> None:
    holds = {
        "<": lambda bound: value < bound,
        "<=": lambda bound: value <= bound,
        "=": lambda bound: value == bound,
        ">=": lambda bound: value >= bound,
        ">": lambda bound: value > bound,
    }
    expected = all(holds[op](bound) for op, bound in bounds)
    spec = {"n": {"numeric": [item for pair in bounds for item in pair]}}
    assert compile_filter(spec)({"n": value}) is expected


@given(text=st.text(max_size=10), affix=st.text(max_size=4))
def test_prefix_and_suffix_agree_with_str_methods(text: str, affix: str) -> None:
    event = {"t": text}
    assert compile_filter({"t": {"prefix": affix}})(event) is text.startswith(affix)
    assert compile_filter({"t": {"suffix": affix}})(event) is text.endswith(affix)


@given(
    title=st.text(max_size=6),
    price=st.integers(-5, 100),
    country=st.sampled_from(["FR", "DE", "XX"]),
    tags=st.lists(st.sampled_from(["home", "sale", "new"]), max_size=3),
    spec=st.fixed_dictionaries(
        {},
        optional={
            "title": st.one_of(st.text(max_size=3).map(lambda p: {"prefix": p}), st.text()),
            "price": st.tuples(comparisons, st.integers(-5, 100)).map(
                lambda pair: {"numeric": list(pair)}
            ),
            "seller.country": st.one_of(
                st.lists(st.sampled_from(["FR", "DE", "XX"]), min_size=1),
                st.sampled_from(["FR", "XX"]).map(lambda c: {"anything-but": c}),
            ),
            "tags": st.sampled_from(["home", "sale", {"exists": True}, {"prefix": "n"}]),
        },
    ),
)
def test_every_kind_of_event_gives_the_same_answer(
    title: str, price: int, country: str, tags: list[str], spec: dict[str, Any]
) -> None:
    seller: dict[str, Any] = {"country": country, "rating": 1.0}
    as_mapping = {"title": title, "price": price, "seller": seller, "tags": tags}
    events = [
        as_mapping,
        ListingStruct(title, price, SellerStruct(**seller), tags),
        ListingData(title, price, SellerData(**seller), tags),
        ListingModel.model_validate(as_mapping),
    ]
    compiled = compile_filter(spec)
    answers = {compiled(event) for event in events}
    assert len(answers) == 1
