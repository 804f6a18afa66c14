"""The InitProducerId handler, called directly with an in-process ``Broker``."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kio.index import load_request_schema
from kio.schema.errors import ErrorCode

from eventyard.broker import Broker, BrokerConfig
from eventyard.protocols.kafka.registry import load_all, supported
from tests.protocols.kafka.handlers import call_handler

INIT_PRODUCER_ID = 22
MS = datetime.timedelta(milliseconds=1)


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    async with await Broker.open(tmp_path, BrokerConfig()) as opened:
        yield opened


async def call(broker: Broker, version: int, transactional_id: str | None) -> Any:
    schema: Any = load_request_schema(INIT_PRODUCER_ID, version)
    body = schema(transactional_id=transactional_id, transaction_timeout=60_000 * MS)
    return await call_handler(broker, INIT_PRODUCER_ID, version, body)


def test_registered_versions() -> None:
    load_all()
    assert supported()[INIT_PRODUCER_ID] == (0, 1)


@pytest.mark.parametrize("version", [0, 1])
async def test_allocates_distinct_producer_ids(broker: Broker, version: int) -> None:
    first = await call(broker, version, None)
    second = await call(broker, version, None)
    assert first.error_code == second.error_code == ErrorCode.none
    assert first.producer_id >= 0
    assert second.producer_id != first.producer_id
    assert first.producer_epoch >= 0


async def test_refuses_transactional_ids(broker: Broker) -> None:
    answer = await call(broker, 1, "tx-1")
    assert (answer.error_code, answer.producer_id) == (ErrorCode.invalid_request, -1)
