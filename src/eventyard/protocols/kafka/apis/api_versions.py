"""ApiVersions (API key 18), versions 0-3: which APIs and versions this broker serves.

The list is built from ``registry.supported()`` on every request, so it is exactly what the
handler modules registered. An unsupported ApiVersions version never reaches this handler:
the connection answers it with UNSUPPORTED_VERSION in a v0 body, as Kafka does. Responses
always travel with response header v0 (the connection sees to it). No features are
advertised (v3's tagged feature fields keep their empty defaults).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i16

from eventyard.protocols.kafka.apis._entities import build, response_class, response_module
from eventyard.protocols.kafka.registry import RequestContext, register, supported

__all__ = ["api_versions"]

API_KEY = 18


@register(API_KEY, 0, 3)
async def api_versions(ctx: RequestContext, request: Any) -> Any:
    """Answer with every registered api key and its version range."""
    entry = response_module(API_KEY, ctx.api_version).ApiVersion
    entries = tuple(
        entry(api_key=i16(key), min_version=i16(low), max_version=i16(high))
        for key, (low, high) in supported().items()
    )
    response = response_class(API_KEY, ctx.api_version)
    return build(response, error_code=ErrorCode.none, api_keys=entries)
