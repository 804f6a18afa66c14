"""EmbeddedTransport: the shared contract on a tmp_path broker, plus ownership and restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eventyard.broker import Broker, BrokerConfig
from eventyard.broker.groups import GroupConfig
from eventyard.client import ConsumerRecord
from eventyard.errors import ConfigError, TransportError, UnknownTopicError
from eventyard.transports import EmbeddedTransport, Outgoing, Transport
from tests.transports.contract import TransportContract, collect, next_offsets, numbered

CONFIG = BrokerConfig(groups=GroupConfig(initial_rebalance_delay_ms=50))
FAST = {"session_timeout_ms": 2_000, "heartbeat_interval_ms": 50}


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    broker = await Broker.open(tmp_path / "data", CONFIG)
    yield broker
    await broker.close()


class TestEmbeddedTransport(TransportContract):
    @pytest.fixture
    async def transport(self, broker: Broker) -> AsyncIterator[Transport]:
        async with EmbeddedTransport(broker, **FAST) as transport:
            yield transport


async def test_a_path_opens_a_broker_the_transport_owns(tmp_path: Path) -> None:
    data = tmp_path / "owned"
    async with EmbeddedTransport(data, config=CONFIG, **FAST) as transport:
        await transport.publish("t", numbered(3))
        async with transport.receiver(["t"], "g") as receiver:
            got = await collect(receiver, 3)
            await receiver.commit(next_offsets(got[:2]))
    async with (
        EmbeddedTransport(data, config=CONFIG, **FAST) as transport,
        transport.receiver(["t"], "g") as receiver,
    ):
        (message,) = await collect(receiver, 1)
    assert (message.offset, message.value) == (2, b"m2")
    reopened = await Broker.open(data, CONFIG)
    await reopened.close()


async def test_a_broker_passed_in_stays_open(broker: Broker) -> None:
    async with EmbeddedTransport(broker, **FAST) as transport:
        await transport.publish("t", numbered(1))
    assert broker.partition_count("t") == 1
    async with EmbeddedTransport(broker, **FAST) as transport:
        assert transport.broker is broker


async def test_config_applies_only_to_a_path(broker: Broker) -> None:
    with pytest.raises(ConfigError):
        EmbeddedTransport(broker, config=CONFIG)


async def test_topics_it_creates_get_its_partition_count(broker: Broker) -> None:
    async with EmbeddedTransport(broker, partitions=3, **FAST) as transport:
        await transport.publish("auto", numbered(1))
        await transport.ensure_topic("made")
        async with transport.receiver(["read"], "g"):
            pass
    assert [broker.partition_count(t) for t in ("auto", "made", "read")] == [3, 3, 3]


async def test_fetch_returns_the_consumer_records_themselves(broker: Broker) -> None:
    async with EmbeddedTransport(broker, **FAST) as transport:
        await transport.publish("t", numbered(2))
        async with transport.receiver(["t"], "g") as receiver:
            got = await collect(receiver, 2)
    assert all(type(m) is ConsumerRecord for m in got)


async def test_without_auto_creation_unknown_topics_are_refused(tmp_path: Path) -> None:
    config = BrokerConfig(auto_create_topics=False, groups=CONFIG.groups)
    async with EmbeddedTransport(tmp_path / "d", config=config, **FAST) as transport:
        with pytest.raises(UnknownTopicError):
            await transport.publish("t", [Outgoing(None, b"v")])
        with pytest.raises(UnknownTopicError):
            await transport.receiver(["t"], "g").start()
        await transport.ensure_topic("t", 2)
        await transport.publish("t", [Outgoing(None, b"v")])


async def test_the_broker_is_there_only_once_started(tmp_path: Path) -> None:
    transport = EmbeddedTransport(tmp_path / "d", config=CONFIG)
    with pytest.raises(TransportError, match="start"):
        _ = transport.broker
    with pytest.raises(TransportError, match="start"):
        await transport.publish("t", [Outgoing(None, b"v")])
    await transport.start()
    await transport.start()
    await transport.close()
    with pytest.raises(TransportError, match="closed"):
        await transport.start()
