"""Upcasters: the steps that bring an event's old ``data`` up to its current schema version.

An event type's schema changes over time while old events stay on the log, so a consumer may
read ``listing.created`` data written at version 1 with a class registered at version 3.
Each upcaster is one step, ``fn(dict) -> dict`` from ``from_version`` to ``from_version + 1``,
registered per event type (:meth:`EventRegistry.upcaster
<eventyard.events.registry.EventRegistry.upcaster>`); reading version 1 data as version 3
runs the 1->2 then the 2->3 step, in order, on the decoded JSON object.

The whole chain is checked before any step runs, so a missing step raises
:class:`~eventyard.errors.EventValidationError` naming the gap without running user code on
half-converted data. Data newer than the consumer's class cannot be downcast and raises too.
Upcasters are pure functions of the old document; exceptions they raise propagate unchanged,
since they are bugs to see, not bad input to hide.

Only the slow path builds a dict: an envelope already at the current version never reaches
this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from eventyard.errors import ConfigError, EventDecodeError, EventValidationError

__all__ = ["Upcaster", "Upcasters"]

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""One step: the data of version ``n`` as a JSON object in, version ``n + 1`` out."""

_decode_json = msgspec.json.Decoder().decode
_encode_json = msgspec.json.Encoder().encode


class Upcasters:
    """The upcaster steps of every event type, by type name and source version."""

    def __init__(self) -> None:
        self._steps: dict[str, dict[int, Upcaster]] = {}

    def add(self, type_name: str, from_version: int, fn: Upcaster) -> None:
        """Register ``fn`` as the step from ``from_version`` to ``from_version + 1``.

        Raises :class:`~eventyard.errors.ConfigError` for a version below 1 or a second
        step from the same version of the same type.
        """
        if isinstance(from_version, bool) or not isinstance(from_version, int) or from_version < 1:
            raise ConfigError(
                f"upcaster from_version must be an integer >= 1, not {from_version!r}"
            )
        steps = self._steps.setdefault(type_name, {})
        existing = steps.get(from_version)
        if existing is not None and existing is not fn:
            raise ConfigError(
                f"{type_name!r} already has an upcaster from version {from_version} "
                f"({existing.__qualname__})"
            )
        steps[from_version] = fn

    def versions(self, type_name: str) -> list[int]:
        """The source versions ``type_name`` has steps from, ascending."""
        return sorted(self._steps.get(type_name, ()))

    def upcast(self, type_name: str, data: bytes, from_version: int, to_version: int) -> bytes:
        """``data`` (JSON, at ``from_version``) brought up to ``to_version``, as JSON again.

        Returning JSON rather than the dict lets the caller decode it with the same decoder,
        and so the same validation and messages, as data written at the current version.

        Raises :class:`~eventyard.errors.EventValidationError` when ``from_version`` is newer
        than ``to_version``, a step is missing or the data is not a JSON object, and
        :class:`~eventyard.errors.EventDecodeError` when it is not JSON at all.
        """
        if from_version > to_version:
            raise EventValidationError(
                f"{type_name}: data version {from_version} is newer than the consumer's "
                f"version {to_version} (upcasters only go forward)"
            )
        steps = self._steps.get(type_name, {})
        chain: list[Upcaster] = []
        for version in range(from_version, to_version):
            step = steps.get(version)
            if step is None:
                raise EventValidationError(
                    f"{type_name}: no upcaster from version {version} to {version + 1} "
                    f"(data is version {from_version}, the consumer wants {to_version})"
                )
            chain.append(step)
        try:
            document = _decode_json(data)
        except msgspec.DecodeError as exc:
            raise EventDecodeError(
                f"{type_name} v{from_version}: data is not JSON: {exc}"
            ) from None
        if not isinstance(document, dict):
            raise EventValidationError(
                f"{type_name} v{from_version}: data is a JSON {_json_kind(document)}, "
                "not an object, so it cannot be upcast"
            )
        for version, step in enumerate(chain, start=from_version):
            document = step(document)
            if not isinstance(document, dict):
                raise TypeError(
                    f"upcaster {step.__qualname__} ({type_name} {version}->{version + 1}) "
                    f"returned {document.__class__.__name__}, not a dict"
                )
        return _encode_json(document)


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number"
