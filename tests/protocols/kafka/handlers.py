"""Calling a registered Kafka handler the way the connection does, for handler-level tests."""

from __future__ import annotations

import inspect
import io
from typing import Any

from kio.index import load_response_schema
from kio.serial import entity_writer

from eventyard.broker import Broker
from eventyard.protocols.kafka.registry import RequestContext, load_all, lookup

__all__ = ["call_handler"]


async def call_handler(
    broker: Broker,
    api_key: int,
    version: int,
    body: Any,
    *,
    client_host: str = "127.0.0.1",
    advertised_host: str = "127.0.0.1",
) -> Any:
    """Run the handler registered for ``api_key`` at ``version`` on a decoded ``body``
    (a ``pipelined`` handler's answer may come at once or as an awaitable).

    The answer must be the response entity of that version and must serialize with kio's
    writer, so a field missing in one version fails in the test rather than on a client's
    connection. ``None`` (no response, as for ``acks=0``) is passed through.
    """
    load_all()
    handler = lookup(api_key, version)
    assert handler is not None, (api_key, version)
    ctx = RequestContext(
        broker=broker,
        api_key=api_key,
        api_version=version,
        correlation_id=7,
        client_id="test-client",
        client_host=client_host,
        node_id=0,
        advertised_host=advertised_host,
        advertised_port=9092,
    )
    answer = handler(ctx, body)
    if inspect.isawaitable(answer):
        answer = await answer
    if answer is not None:
        response = load_response_schema(api_key, version)
        assert type(answer) is response
        entity_writer(response)(io.BytesIO(), answer)
    return answer
