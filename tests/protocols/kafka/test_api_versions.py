"""ApiVersions: the handler in process, and real clients negotiating against it."""

from __future__ import annotations

import io
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaClient
from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode
from kio.serial import entity_writer

from eventyard.broker import Broker, BrokerConfig
from eventyard.protocols.kafka.registry import (
    RequestContext,
    load_all,
    lookup,
    register,
    route,
    supported,
)

with warnings.catch_warnings():
    # kafka-python loads its schemas with a deprecated importlib.resources call.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient

API_VERSIONS = 18


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    async with await Broker.open(tmp_path, BrokerConfig()) as opened:
        yield opened


def context(broker: Broker, version: int) -> RequestContext:
    return RequestContext(
        broker=broker,
        api_key=API_VERSIONS,
        api_version=version,
        correlation_id=1,
        client_id="test",
        client_host="127.0.0.1",
        node_id=0,
        advertised_host="127.0.0.1",
        advertised_port=9092,
    )


async def call(broker: Broker, version: int) -> Any:
    load_all()
    handler = lookup(API_VERSIONS, version)
    assert handler is not None
    request_type = load_request_schema(API_VERSIONS, version)
    request = (
        request_type(client_software_name="t", client_software_version="1")
        if version >= 3
        else request_type()
    )
    answer = await handler(context(broker, version), request)
    response = load_response_schema(API_VERSIONS, version)
    assert type(answer) is response
    entity_writer(response)(io.BytesIO(), answer)
    return answer


@pytest.mark.parametrize("version", [0, 1, 2, 3])
async def test_lists_exactly_the_registered_handlers(broker: Broker, version: int) -> None:
    answer = await call(broker, version)
    assert answer.error_code == ErrorCode.none
    listed = {e.api_key: (e.min_version, e.max_version) for e in answer.api_keys}
    assert listed == supported()
    assert listed[API_VERSIONS] == (0, 3)
    assert {3, 19, 20} <= listed.keys()


def test_apis_of_the_old_message_formats_are_advertised_from_version_0() -> None:
    load_all()
    served = supported()
    assert {key: served[key] for key in (0, 1, 2, 8, 9, 19, 20)} == {
        0: (0, 8),
        1: (0, 11),
        2: (0, 5),
        8: (0, 7),
        9: (0, 5),
        19: (0, 4),
        20: (0, 4),
    }
    assert all(low == 0 for low, _ in served.values()), "older librdkafka needs minimum 0"


def test_every_advertised_version_has_a_handler_and_a_codec() -> None:
    load_all()
    for key, (low, high) in supported().items():
        for version in range(low, high + 1):
            entry = route(key, version)
            assert entry is not None, (key, version)
            assert entry.codec.flexible(key, version) in (True, False)


async def _no_handler(ctx: RequestContext, request: Any) -> Any:
    raise AssertionError("never registered")


@pytest.mark.parametrize(
    ("low", "high"), [(5, 9), (0, 0), (10, 12), (3, 2)], ids=["overlap", "same", "gap", "empty"]
)
def test_a_range_that_does_not_extend_the_served_one_is_refused(low: int, high: int) -> None:
    load_all()
    before = supported()
    with pytest.raises(ValueError):
        register(0, low, high)(_no_handler)
    assert supported() == before


def test_version_4_is_not_served() -> None:
    load_all()
    assert lookup(API_VERSIONS, 4) is None


def test_kafka_python_negotiates_versions(kafka_server: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka_server, request_timeout_ms=5000)
    try:
        assert admin._client.check_version() >= (2, 0)
    finally:
        admin.close()


async def test_aiokafka_client_bootstraps(kafka_server: str) -> None:
    client = AIOKafkaClient(bootstrap_servers=kafka_server, request_timeout_ms=5000)
    await client.bootstrap()
    try:
        brokers = client.cluster.brokers()
        assert [(b.nodeId, f"{b.host}:{b.port}") for b in brokers] == [(0, kafka_server)]
    finally:
        await client.close()
