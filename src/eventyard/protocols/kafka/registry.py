"""The Kafka API handler registry: which handler and codec serve which (api key, version).

Handler modules under ``eventyard.protocols.kafka.apis`` decorate their handlers with
``@register(api_key, min_version, max_version, codec=...)``; ``load_all`` imports every module
of that package so they self-register and nobody edits a shared list. An API may be served by
several handlers over adjacent version ranges, each with its own codec (kio for what Kafka 4
defines, kafka-python for the older versions kio lacks; see ``codecs``), and ApiVersions
advertises their union. A handler receives the decoded request entity of ``ctx.api_version``
in its codec's library and returns the response entity of the same version, or ``None`` when
the request gets no response (Produce with ``acks=0``). Handlers never see bytes: framing and
headers live in ``connection``.

A handler registered with ``pipelined=True`` is a plain function, not a coroutine function.
It does what it can at once and returns its answer when it has it (Produce whose appends need
no durability wait: no task, no loop turn), or an awaitable of the answer. The connection
runs that awaitable in a task and reads and starts the next request once it calls
``ctx.detach()``, saying that what is left is only waiting (Produce: for durability), or
finishes; answers still go out in request order. Everything a handler does before returning
or detaching happens before the next request starts, so effects keep request order.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from eventyard.broker import Broker
from eventyard.protocols.kafka.codecs import KIO, Codec

__all__ = [
    "Handler",
    "PipelinedHandler",
    "RequestContext",
    "Route",
    "load_all",
    "lookup",
    "register",
    "route",
    "supported",
]


def _stay_attached() -> None:
    """``detach`` outside a pipelining connection: nothing to let go of."""


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
    detach: Callable[[], None] = _stay_attached
    """Let the connection start the next request while this handler only waits (see above)."""


Handler = Callable[[RequestContext, Any], Awaitable[Any]]
"""A handler: a coroutine function from the request to its answer (``None``: no response)."""

PipelinedHandler = Callable[[RequestContext, Any], Any]
"""A ``pipelined`` handler: a function returning the answer or an awaitable of it."""

H = TypeVar("H", bound=PipelinedHandler)


@dataclass(frozen=True, slots=True)
class Route:
    """One registration: a handler, the versions it serves and the codec of its entities."""

    min_version: int
    max_version: int
    handler: Handler | PipelinedHandler
    codec: Codec
    pipelined: bool


_ROUTES: dict[int, list[Route]] = {}


def register(
    api_key: int,
    min_version: int,
    max_version: int,
    *,
    codec: Codec = KIO,
    pipelined: bool = False,
) -> Callable[[H], H]:
    """Register the decorated handler for ``api_key`` versions ``min_version..max_version``.

    A further registration for the same key must extend the served range without a gap or an
    overlap (ApiVersions can only advertise one range per key). Raises ``ValueError`` on an
    empty range, an overlap or a gap, since each is a programming error that would otherwise
    silently change what the broker serves. Registering the same handler for the same range
    again changes nothing.
    """
    if not 0 <= min_version <= max_version:
        raise ValueError(f"bad version range {min_version}..{max_version} for api {api_key}")

    def decorate(handler: H) -> H:
        new = Route(min_version, max_version, handler, codec, pipelined)
        routes = _ROUTES.setdefault(api_key, [])
        if new in routes:
            return handler
        if routes:
            low, high = routes[0].min_version, routes[-1].max_version
            if min_version != high + 1 and max_version != low - 1:
                raise ValueError(
                    f"api {api_key} versions {min_version}..{max_version} do not extend the "
                    f"registered {low}..{high} without a gap or an overlap"
                )
        routes.append(new)
        routes.sort(key=lambda r: r.min_version)
        return handler

    return decorate


def route(api_key: int, api_version: int) -> Route | None:
    """The registration serving ``api_key`` at ``api_version``, or ``None`` if not served."""
    for entry in _ROUTES.get(api_key, ()):
        if entry.min_version <= api_version <= entry.max_version:
            return entry
    return None


def lookup(api_key: int, api_version: int) -> Handler | PipelinedHandler | None:
    """The handler serving ``api_key`` at ``api_version``, or ``None`` if not served."""
    entry = route(api_key, api_version)
    return None if entry is None else entry.handler


def supported() -> dict[int, tuple[int, int]]:
    """Every served api key mapped to its ``(min_version, max_version)``, for ApiVersions."""
    return {
        key: (routes[0].min_version, routes[-1].max_version)
        for key, routes in sorted(_ROUTES.items())
        if routes
    }


def load_all() -> None:
    """Import every module of ``eventyard.protocols.kafka.apis`` so handlers self-register."""
    package = importlib.import_module("eventyard.protocols.kafka.apis")
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
