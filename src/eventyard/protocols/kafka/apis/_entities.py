"""Building version-specific kio entities, for any handler module of this package.

kio generates one set of dataclasses per API version, and fields come and go between versions
(``throttle_time`` from v1, ``group_instance_id`` from v5, ...). A handler builds each answer
once, field for field, and :func:`build` keeps only the fields the version has, so one handler
serves every version without a table per version. Every handler module uses it; it is not
a handler module itself and registers nothing (``registry.load_all`` imports it harmlessly).
"""

from __future__ import annotations

import datetime
import functools
import importlib
from dataclasses import fields
from types import ModuleType
from typing import Any

from kio.index import load_response_schema
from kio.schema.errors import ErrorCode

from eventyard.errors import EventyardError

__all__ = ["NO_THROTTLE", "build", "error_code", "millis", "response_class", "response_module"]

NO_THROTTLE = datetime.timedelta(0)
"""``throttle_time`` of every answer: eventyard does not throttle."""


_FIELD_NAMES: dict[type[Any], frozenset[str]] = {}


def build(cls: type[Any], **values: Any) -> Any:
    """``cls(**values)`` keeping only the fields ``cls`` has; ``throttle_time`` defaults to 0."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(f.name for f in fields(cls))
    if "throttle_time" in names:
        values.setdefault("throttle_time", NO_THROTTLE)
    return cls(**{name: value for name, value in values.items() if name in names})


@functools.cache
def response_class(api_key: int, api_version: int) -> type[Any]:
    """The kio response entity of ``api_key`` at ``api_version``, looked up once: kio's own
    lookup resolves a dotted name through ``pkgutil`` every time (about 15 µs, a tenth of
    what the Kafka front spends on a small Produce or Fetch)."""
    return load_response_schema(api_key, api_version)


@functools.cache
def response_module(api_key: int, api_version: int) -> ModuleType:
    """The kio module of the response of ``api_key`` at ``api_version`` (its nested entities)."""
    return importlib.import_module(response_class(api_key, api_version).__module__)


def error_code(error: EventyardError) -> ErrorCode:
    """The protocol error code of ``error`` (UNKNOWN_SERVER_ERROR for codes kio lacks)."""
    try:
        return ErrorCode(error.code)
    except ValueError:
        return ErrorCode.unknown_server_error


def millis(delta: datetime.timedelta) -> int:
    """A kio duration field in whole milliseconds."""
    return delta // datetime.timedelta(milliseconds=1)
