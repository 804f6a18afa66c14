"""Content filters in the style of EventBridge patterns, compiled once to a fast predicate.

A subscription's ``filter=`` maps field paths to what the field must hold; an event is handled
only when every field matches (a logical AND)::

    {
        "$type": "listing.created",              # an envelope attribute: `$` prefix
        "$region": ["eu", "us"],                 # an extension attribute (envelope.extensions)
        "price": {"numeric": [">", 0, "<=", 500]},
        "seller.country": {"anything-but": ["XX"]},
        "title": {"prefix": "Vintage "},
        "discount": {"exists": False},
    }

Paths are dotted names into the typed event: ``msgspec.Struct``\\ s, dataclasses, pydantic
models and any object are read by attribute, mappings by key. A path whose first name starts
with ``$`` reads the envelope, passed as the predicate's second argument, instead; a name the
envelope has no attribute for is looked up in its ``extensions`` mapping, since CloudEvents
treats extension attributes as top-level ones. When a path crosses a list or tuple, the rest
of the path is applied to each element and the field holds all the results, and a field that
holds a list matches when any element matches (``"tags": "sale"`` matches ``tags=["new",
"sale"]``), as in EventBridge.

What a field can be given:

- a scalar (``str``, ``int``, ``float``, ``bool``, ``None``): equality. Booleans equal only
  booleans (``True`` does not match ``1``), numbers compare by value (``1`` matches ``1.0``),
  and an ``enum.Enum`` field is compared by its ``value``.
- a list: any of its items matches; each item is a scalar or an operator object.
- an operator object, all of whose operators must match:
  ``{"prefix": "x"}``, ``{"suffix": "x"}`` (strings only);
  ``{"anything-but": x}`` where ``x`` is a scalar, a list of scalars or a ``prefix``/``suffix``
  object, matching every present value that ``x`` does not match;
  ``{"numeric": [">", 0, "<=", 5]}``, pairs of ``<``, ``<=``, ``=``, ``>=``, ``>`` and a number,
  matching numbers (never booleans or numeric strings) that satisfy every pair;
  ``{"exists": True}`` / ``{"exists": False}``.

A field that is absent, or ``None``, does not "exist": typed events always have every declared
attribute, and an unset optional one is ``None``. Every other test fails on an absent field,
``anything-but`` included, so ``exists: False`` is the one way to select events without it.
An empty spec matches every event.

:func:`compile_filter` checks the whole spec up front and raises
:class:`~eventyard.errors.ConfigError` naming the field and the operator for anything it does
not understand; a typo like ``{"prefx": "a"}`` fails at import time instead of silently
matching nothing. :attr:`Filter.envelope_only` tells the dispatcher that a filter reads only
``$`` attributes, so it can drop events before decoding their data.
"""

from __future__ import annotations

import enum
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from eventyard.errors import ConfigError

__all__ = ["Filter", "compile_filter"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Final = _Missing()
_Test = Callable[[Any], bool]
"""A test of one resolved value (possibly ``_MISSING``)."""

_COMPARISONS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    ">=": operator.ge,
    ">": operator.gt,
}
_OPERATORS: Final = ("anything-but", "exists", "numeric", "prefix", "suffix")


_SEQUENCES: Final = (list, tuple)
_OBJECT, _MAPPING, _SEQUENCE = 0, 1, 2
_KINDS: dict[type, int] = {dict: _MAPPING, list: _SEQUENCE, tuple: _SEQUENCE}
"""How to step into each type seen so far (one entry per class): a dictionary lookup is
cheaper than the ``Mapping`` ABC check it caches."""


def _kind(value: Any) -> int:
    kind = _KINDS.get(type(value))
    if kind is None:
        kind = _KINDS[type(value)] = (
            _MAPPING
            if isinstance(value, Mapping)
            else _SEQUENCE
            if isinstance(value, _SEQUENCES)
            else _OBJECT
        )
    return kind


def _step(value: Any, name: str) -> Any:
    """``value``'s attribute or key ``name``; a list or tuple has none (see :func:`_resolve`)."""
    kind = _kind(value)
    if kind == _OBJECT:
        return getattr(value, name, _MISSING)
    if kind == _MAPPING:
        return value.get(name, _MISSING)
    return _MISSING


def _resolve(value: Any, names: tuple[str, ...]) -> Any:
    for index, name in enumerate(names):
        kind = _kind(value)
        if kind == _OBJECT:
            value = getattr(value, name, _MISSING)
        elif kind == _MAPPING:
            value = value.get(name, _MISSING)
        else:
            found: list[Any] = []
            for item in value:
                result = _resolve(item, names[index:])
                if isinstance(result, _SEQUENCES):
                    found.extend(result)
                elif result is not _MISSING:
                    found.append(result)
            return found if found else _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _on_values(test: _Test, *, accepts_none: bool = False) -> _Test:
    """Lift a test of one present value to a field: absent fails, a list matches on any.

    ``None`` reaches only equality tests (``accepts_none``); for every other operator a
    ``None`` field is absent, as the module docstring says.
    """

    def field(value: Any) -> bool:
        if type(value) is str:
            return test(value)
        if value is _MISSING:
            return False
        if value is None:
            return accepts_none and test(None)
        if isinstance(value, _SEQUENCES):
            return any(
                test(item.value if isinstance(item, enum.Enum) else item)
                for item in value
                if accepts_none or item is not None
            )
        if isinstance(value, enum.Enum):
            value = value.value
        return test(value)

    return field


def _is_number(value: Any) -> bool:
    kind = type(value)
    return kind is int or kind is float or (isinstance(value, int | float) and kind is not bool)


def _equals(expected: Any) -> _Test:
    if expected is None or isinstance(expected, bool):
        return lambda value: value is expected
    if isinstance(expected, int | float):
        return lambda value: _is_number(value) and value == expected
    return lambda value: isinstance(value, str) and value == expected


def _scalar(field: str, where: str, value: Any) -> _Test:
    if value is None or isinstance(value, str | bool):
        return _equals(value)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ConfigError(f"filter field {field!r}, {where}: {value!r} is not a finite number")
        return _equals(value)
    raise ConfigError(
        f"filter field {field!r}, {where}: expected a string, number, boolean or null, "
        f"got {value!r}"
    )


def _any_of(tests: Sequence[_Test]) -> _Test:
    if len(tests) == 1:
        return tests[0]
    return lambda value: any(test(value) for test in tests)


def _string_operand(field: str, name: str, operand: Any) -> str:
    if not isinstance(operand, str):
        raise ConfigError(
            f"filter field {field!r}, operator {name!r}: expected a string, got {operand!r}"
        )
    return operand


def _prefix(field: str, operand: Any) -> _Test:
    text = _string_operand(field, "prefix", operand)
    return lambda value: isinstance(value, str) and value.startswith(text)


def _suffix(field: str, operand: Any) -> _Test:
    text = _string_operand(field, "suffix", operand)
    return lambda value: isinstance(value, str) and value.endswith(text)


def _anything_but(field: str, operand: Any) -> _Test:
    where = "operator 'anything-but'"
    if isinstance(operand, Mapping):
        if len(operand) != 1 or next(iter(operand)) not in ("prefix", "suffix"):
            raise ConfigError(
                f"filter field {field!r}, {where}: an object must be exactly one of "
                f"prefix or suffix, got {dict(operand)!r}"
            )
        ((name, text),) = operand.items()
        inner = _prefix(field, text) if name == "prefix" else _suffix(field, text)
    elif isinstance(operand, list | tuple):
        if not operand:
            raise ConfigError(f"filter field {field!r}, {where}: the list is empty")
        inner = _any_of([_scalar(field, where, item) for item in operand])
    else:
        inner = _scalar(field, where, operand)
    return lambda value: not inner(value)


def _numeric(field: str, operand: Any) -> _Test:
    where = f"filter field {field!r}, operator 'numeric'"
    if not isinstance(operand, list | tuple) or not operand or len(operand) % 2:
        raise ConfigError(
            f"{where}: expected pairs of a comparison and a number, like "
            f"['>', 0, '<=', 5], got {operand!r}"
        )
    bounds: list[tuple[Callable[[Any, Any], bool], float]] = []
    for comparison, number in zip(operand[::2], operand[1::2], strict=True):
        if comparison not in _COMPARISONS:
            raise ConfigError(
                f"{where}: unknown comparison {comparison!r} (known: {', '.join(_COMPARISONS)})"
            )
        if not _is_number(number) or not math.isfinite(number):
            raise ConfigError(f"{where}: {comparison!r} needs a finite number, got {number!r}")
        bounds.append((_COMPARISONS[comparison], number))

    if len(bounds) == 1:
        ((compare, bound),) = bounds
        return lambda value: _is_number(value) and compare(value, bound)
    if len(bounds) == 2:
        (first, low), (second, high) = bounds
        return lambda value: _is_number(value) and first(value, low) and second(value, high)
    return lambda value: (
        _is_number(value) and all(compare(value, bound) for compare, bound in bounds)
    )


_VALUE_OPERATORS: Final[dict[str, Callable[[str, Any], _Test]]] = {
    "anything-but": _anything_but,
    "numeric": _numeric,
    "prefix": _prefix,
    "suffix": _suffix,
}


def _operators(field: str, spec: Mapping[Any, Any]) -> _Test:
    if not spec:
        raise ConfigError(f"filter field {field!r}: an operator object needs an operator")
    tests: list[_Test] = []
    for name, operand in spec.items():
        if name == "exists":
            if not isinstance(operand, bool):
                raise ConfigError(
                    f"filter field {field!r}, operator 'exists': expected true or false, "
                    f"got {operand!r}"
                )
            if operand:
                tests.append(lambda value: value is not _MISSING and value is not None)
            else:
                tests.append(lambda value: value is _MISSING or value is None)
        elif name in _VALUE_OPERATORS:
            tests.append(_on_values(_VALUE_OPERATORS[name](field, operand)))
        else:
            known = ", ".join(_OPERATORS)
            raise ConfigError(f"filter field {field!r}: unknown operator {name!r} (known: {known})")
    if len(tests) == 1:
        return tests[0]
    return lambda value: all(test(value) for test in tests)


def _field_test(field: str, spec: Any) -> _Test:
    if isinstance(spec, Mapping):
        return _operators(field, spec)
    if isinstance(spec, list | tuple):
        if not spec:
            raise ConfigError(f"filter field {field!r}: the list of allowed values is empty")
        if all(isinstance(item, str) for item in spec):
            allowed = frozenset(spec)
            return _on_values(lambda value: isinstance(value, str) and value in allowed)
        return _any_of(
            [
                _operators(field, item)
                if isinstance(item, Mapping)
                else _on_values(_scalar(field, "list item", item), accepts_none=True)
                for item in spec
            ]
        )
    return _on_values(_scalar(field, "value", spec), accepts_none=True)


def _path(field: Any) -> tuple[bool, tuple[str, ...]]:
    if not isinstance(field, str):
        raise ConfigError(f"filter field {field!r}: field paths must be strings")
    on_envelope = field.startswith("$")
    names = tuple((field[1:] if on_envelope else field).split("."))
    if not all(names) or any(name.startswith("$") for name in names):
        raise ConfigError(
            f"filter field {field!r}: expected dotted names like 'seller.country' or '$type'"
        )
    return on_envelope, names


def _envelope_resolver(names: tuple[str, ...]) -> Callable[[Any], Any]:
    first, rest = names[0], names[1:]

    def resolve(envelope: Any) -> Any:
        if envelope is None:
            return _MISSING
        value = _step(envelope, first)
        if value is _MISSING:
            extensions = _step(envelope, "extensions")
            if not isinstance(extensions, Mapping):
                return _MISSING
            value = extensions.get(first, _MISSING)
            if value is _MISSING:
                return _MISSING
        return _resolve(value, rest) if rest else value

    return resolve


_Check = Callable[[Any, Any], bool]
"""One field's check of ``(event, envelope)``."""


def _check(on_envelope: bool, names: tuple[str, ...], test: _Test) -> _Check:
    if on_envelope:
        resolve = _envelope_resolver(names)
        return lambda event, envelope: test(resolve(envelope))
    if len(names) == 1:
        (name,) = names
        return lambda event, envelope: test(_step(event, name))
    return lambda event, envelope: test(_resolve(event, names))


def _conjunction(checks: Sequence[_Check]) -> _Check:
    """All of ``checks``, chained with ``and`` (no loop: one or two fields are the usual case)."""
    if not checks:
        return lambda event, envelope: True
    first, *rest = checks
    if not rest:
        return first
    others = _conjunction(rest)
    return lambda event, envelope: first(event, envelope) and others(event, envelope)


class Filter:
    """A compiled content filter: call it with the typed event and, optionally, the envelope."""

    __slots__ = ("_match", "envelope_only", "fields")

    def __init__(self, checks: Sequence[_Check], fields: tuple[str, ...]) -> None:
        self._match = _conjunction(checks)
        self.fields = fields
        """The field paths of the spec, in its order."""
        self.envelope_only = all(field.startswith("$") for field in fields)
        """Whether only envelope attributes are read (the event argument may be ``None``)."""

    def __call__(self, event: object, envelope: object | None = None) -> bool:
        return self._match(event, envelope)

    def __repr__(self) -> str:
        return f"Filter(fields={list(self.fields)!r})"


def compile_filter(spec: Mapping[str, Any]) -> Filter:
    """Check ``spec`` and build its :class:`Filter`; a bad spec raises ``ConfigError``."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"a filter must be a mapping of field paths, got {spec!r}")
    checks: list[_Check] = []
    for field, field_spec in spec.items():
        on_envelope, names = _path(field)
        checks.append(_check(on_envelope, names, _field_test(field, field_spec)))
    return Filter(checks, tuple(spec))
