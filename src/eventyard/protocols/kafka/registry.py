"""The Kafka API handler registry: which handler serves which (api key, version).

Handler modules under ``eventyard.protocols.kafka.apis`` decorate their handler with
``@register(api_key, min_version, max_version)``; ``load_all`` imports every module of that
package so they self-register and nobody edits a shared list. A handler receives the decoded
kio request entity of ``ctx.api_version`` and returns the kio response entity of the same
version, or ``None`` when the request gets no response (Produce with ``acks=0``). Handlers
never see bytes: framing and headers live in ``connection``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from eventyard.broker import Broker

__all__ = ["Handler", "RequestContext", "load_all", "lookup", "register", "supported"]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What a handler knows about the request beyond its body."""

    broker: Broker
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    client_host: str
    node_id: int
    advertised_host: str
    advertised_port: int


Handler = Callable[[RequestContext, Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class _Entry:
    min_version: int
    max_version: int
    handler: Handler


_HANDLERS: dict[int, _Entry] = {}


def register(api_key: int, min_version: int, max_version: int) -> Callable[[Handler], Handler]:
    """Register the decorated handler for ``api_key`` versions ``min_version..max_version``.

    Raises ``ValueError`` on an empty range or a second handler for the same key, since either
    is a programming error that would otherwise silently change what the broker serves.
    """
    if not 0 <= min_version <= max_version:
        raise ValueError(f"bad version range {min_version}..{max_version} for api {api_key}")

    def decorate(handler: Handler) -> Handler:
        existing = _HANDLERS.get(api_key)
        if existing is not None and existing.handler is not handler:
            raise ValueError(f"api key {api_key} is already registered")
        _HANDLERS[api_key] = _Entry(min_version, max_version, handler)
        return handler

    return decorate


def lookup(api_key: int, api_version: int) -> Handler | None:
    """The handler serving ``api_key`` at ``api_version``, or ``None`` if not served."""
    entry = _HANDLERS.get(api_key)
    if entry is None or not entry.min_version <= api_version <= entry.max_version:
        return None
    return entry.handler


def supported() -> dict[int, tuple[int, int]]:
    """Every served api key mapped to its ``(min_version, max_version)``, for ApiVersions."""
    return {key: (e.min_version, e.max_version) for key, e in sorted(_HANDLERS.items())}


def load_all() -> None:
    """Import every module of ``eventyard.protocols.kafka.apis`` so handlers self-register."""
    package = importlib.import_module("eventyard.protocols.kafka.apis")
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
