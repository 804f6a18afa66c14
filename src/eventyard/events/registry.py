"""Typed events: which class is which CloudEvents ``type`` at which schema version.

An event class is a ``msgspec.Struct`` (or anything else msgspec decodes: a dataclass, an
attrs class) or a pydantic ``BaseModel``, registered with a type name and a version::

    @event("listing.created", version=2)
    class ListingCreated(msgspec.Struct):
        listing_id: str
        price: int

:func:`event` and :func:`upcaster` register on :data:`default_registry`; an application that
wants its own namespace builds an :class:`EventRegistry` and uses its methods of the same
names. Registration happens at import time; afterwards a registry is only read, so sharing one
between threads is safe.

:meth:`EventRegistry.decoder` returns the function a subscription calls once per event: it
checks the envelope's ``type``, runs the upcasters when ``dataversion`` is older than the
class's version, and decodes and validates ``data``. Its fast path (right type, current
version) is one ``msgspec.json.Decoder.decode`` call, built once per class; no dict is ever
built there. Data that does not fit the class raises
:class:`~eventyard.errors.EventValidationError` with msgspec's message, which names the field
path (pydantic's first error is put in the same shape); data that is not JSON raises its base,
:class:`~eventyard.errors.EventDecodeError`.

pydantic is recognised by its methods (``model_validate_json``, ``model_dump_json``), not
imported: this package depends on msgspec and the standard library only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import msgspec
import msgspec.inspect

from eventyard.errors import ConfigError, EventDecodeError, EventValidationError
from eventyard.events.upcasting import Upcaster, Upcasters

if TYPE_CHECKING:
    from eventyard.events.envelope import Envelope

__all__ = ["EventRegistry", "default_registry", "event", "upcaster"]

E = TypeVar("E")
U = TypeVar("U", bound=Upcaster)

_encode_json = msgspec.json.Encoder().encode


def _is_pydantic(cls: type) -> bool:
    return callable(getattr(cls, "model_validate_json", None)) and callable(
        getattr(cls, "model_dump_json", None)
    )


def _pydantic_reason(exc: ValueError) -> tuple[bool, str]:
    """``(is_json_error, one line)`` for a pydantic ``ValidationError``, msgspec-shaped."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return False, str(exc).splitlines()[0]
    details = cast("list[dict[str, Any]]", errors(include_url=False))
    if not details:
        return False, str(exc).splitlines()[0]
    first = details[0]
    path = "$" + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in first.get("loc", ())
    )
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return first.get("type") == "json_invalid", f"{first.get('msg')} - at `{path}`{more}"


class _Registration(msgspec.Struct, frozen=True):
    """What the registry knows about one event class."""

    type_name: str
    version: int
    decode: Callable[[bytes], Any]
    """The raw decoder: ``msgspec.json.Decoder(cls).decode`` or ``cls.model_validate_json``."""
    errors: tuple[type[Exception], ...]
    """What ``decode`` raises for bad data."""
    pydantic: bool


class EventRegistry:
    """Event classes by CloudEvents type name and version, with their upcasters and decoders."""

    def __init__(self) -> None:
        self._by_class: dict[type, _Registration] = {}
        self._by_name: dict[str, type] = {}
        self._upcasters = Upcasters()
        self._decoders: dict[tuple[type, bool], Callable[[Envelope], Any]] = {}

    def event(self, type_name: str, *, version: int = 1) -> Callable[[type[E]], type[E]]:
        """A class decorator registering the class as ``type_name`` at ``version``.

        Registering the same class again with the same name and version is a no-op (a
        re-imported module); any other reuse of a class or a name raises
        :class:`~eventyard.errors.ConfigError`, as do an empty name, a version below 1 and a
        class msgspec cannot decode.
        """
        if not isinstance(type_name, str) or not type_name:
            raise ConfigError(f"an event type name must be a non-empty string, not {type_name!r}")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ConfigError(f"event {type_name!r}: version must be an integer >= 1")

        def register(cls: type[E]) -> type[E]:
            self._register(cls, type_name, version)
            return cls

        return register

    def _register(self, cls: type, type_name: str, version: int) -> None:
        existing = self._by_class.get(cls)
        if existing is not None:
            if (existing.type_name, existing.version) == (type_name, version):
                return
            raise ConfigError(
                f"{cls.__qualname__} is already registered as {existing.type_name!r} "
                f"v{existing.version}"
            )
        other = self._by_name.get(type_name)
        if other is not None:
            raise ConfigError(f"event type {type_name!r} is already {other.__qualname__}")
        if _is_pydantic(cls):
            decode: Callable[[bytes], Any] = cast(Any, cls).model_validate_json
            registration = _Registration(type_name, version, decode, (ValueError,), True)
        else:
            info = msgspec.inspect.type_info(cls)
            if not isinstance(info, msgspec.inspect.StructType | msgspec.inspect.DataclassType):
                raise ConfigError(
                    f"{getattr(cls, '__qualname__', cls)!r} cannot be an event type: use a "
                    "msgspec.Struct, a dataclass, an attrs class or a pydantic BaseModel"
                )
            decode = msgspec.json.Decoder(cls).decode
            registration = _Registration(type_name, version, decode, (msgspec.DecodeError,), False)
        self._by_class[cls] = registration
        self._by_name[type_name] = cls

    def upcaster(self, type_name: str, *, from_version: int) -> Callable[[U], U]:
        """A function decorator registering ``fn(dict) -> dict``: ``type_name``'s data from
        ``from_version`` to ``from_version + 1`` (see :mod:`eventyard.events.upcasting`).

        The event class may be registered before or after its upcasters.
        """

        def register(fn: U) -> U:
            self._upcasters.add(type_name, from_version, fn)
            return fn

        return register

    def __contains__(self, cls: object) -> bool:
        return cls in self._by_class

    def _registration(self, cls: type) -> _Registration:
        registration = self._by_class.get(cls)
        if registration is None:
            name = getattr(cls, "__qualname__", repr(cls))
            raise ConfigError(f"{name} is not a registered event type (decorate it with @event)")
        return registration

    def type_name(self, cls: type) -> str:
        """The CloudEvents ``type`` of a registered class (else :class:`ConfigError`)."""
        return self._registration(cls).type_name

    def version(self, cls: type) -> int:
        """The current schema version of a registered class (else :class:`ConfigError`)."""
        return self._registration(cls).version

    def lookup(self, type_name: str) -> type | None:
        """The class registered as ``type_name``, or ``None``."""
        return self._by_name.get(type_name)

    def encode_data(self, obj: object) -> bytes:
        """``obj`` as JSON bytes: ``model_dump_json`` for pydantic, msgspec for the rest.

        Works for unregistered objects too (anything msgspec encodes); raises
        :class:`TypeError` for what it cannot encode.
        """
        registration = self._by_class.get(obj.__class__)
        pydantic = _is_pydantic(obj.__class__) if registration is None else registration.pydantic
        if pydantic:
            return cast(str, cast(Any, obj).model_dump_json()).encode()
        return _encode_json(obj)

    def decoder(self, cls: type[E], *, check_type: bool = True) -> Callable[[Envelope], E]:
        """The function turning an envelope's ``data`` into a ``cls`` instance (built once).

        It raises :class:`~eventyard.errors.EventValidationError` when ``check_type`` and the
        envelope's ``type`` is not ``cls``'s, when the data does not fit ``cls`` (the message
        names the field path), when an upcaster step is missing or the data is newer than
        ``cls``; :class:`~eventyard.errors.EventDecodeError` when the data is not JSON.
        Envelopes at an older ``dataversion`` run the upcasters first.
        """
        cached = self._decoders.get((cls, check_type))
        if cached is not None:
            return cast("Callable[[Envelope], E]", cached)
        registration = self._registration(cls)
        type_name = registration.type_name
        version = registration.version
        raw_decode = registration.decode
        bad_data = registration.errors
        label = f"{type_name} v{version}"
        upcast = self._upcasters.upcast

        def fail(exc: Exception) -> EventDecodeError:
            if registration.pydantic:
                json_error, reason = _pydantic_reason(cast(ValueError, exc))
            else:
                json_error = not isinstance(exc, msgspec.ValidationError)
                reason = str(exc)
            if json_error:
                return EventDecodeError(f"{label}: data is not JSON: {reason}")
            return EventValidationError(f"{label}: {reason}")

        def decode(envelope: Envelope) -> E:
            data = envelope.data
            if envelope.dataversion != version or (check_type and envelope.type != type_name):
                if check_type and envelope.type != type_name:
                    raise EventValidationError(
                        f"expected an event of type {type_name!r}, got {envelope.type!r}"
                    )
                data = upcast(type_name, data, envelope.dataversion, version)
            try:
                return cast(E, raw_decode(data))
            except bad_data as exc:
                raise fail(exc) from None

        self._decoders[(cls, check_type)] = decode
        return decode


default_registry = EventRegistry()
"""The registry :func:`event`, :func:`upcaster` and ``new_envelope`` use unless given one."""


def event(type_name: str, *, version: int = 1) -> Callable[[type[E]], type[E]]:
    """Register the decorated class on :data:`default_registry` (see
    :meth:`EventRegistry.event`)."""
    return default_registry.event(type_name, version=version)


def upcaster(type_name: str, *, from_version: int) -> Callable[[U], U]:
    """Register the decorated step on :data:`default_registry` (see
    :meth:`EventRegistry.upcaster`)."""
    return default_registry.upcaster(type_name, from_version=from_version)
