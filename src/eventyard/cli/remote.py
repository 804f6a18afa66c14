"""``--broker HOST:PORT``: the data commands against a Kafka-protocol broker, through aiokafka.

With ``--broker`` a data command talks to ``eventyard serve`` or any Kafka cluster over the
Kafka protocol instead of opening a data directory: topics through aiokafka's admin client,
``produce`` through an idempotent ``AIOKafkaProducer`` (``acks=all``; keyed events placed by
murmur2 as on the embedded broker), ``consume`` through an ``AIOKafkaConsumer`` (the same
reading loop and stop rules as the embedded path). The CLI still never auto-creates a
topic: ``produce`` and ``consume`` check that the topic exists first.

aiokafka is the optional ``kafka`` extra: without it, ``--broker`` fails with one line saying
what to install. A broker that cannot be reached, or a Kafka error, is one ``error:`` line too
(a runtime failure); an error the broker attributes to the request (an existing topic, an
invalid name or config) is a user mistake.

What the Kafka protocol does not carry is left out rather than guessed: ``topics list`` and
``describe`` show no sizes on disk, and creation timestamps are absent.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from eventyard.cli.serve import parse_address
from eventyard.errors import (
    EventyardError,
    InvalidConfigError,
    InvalidPartitionsError,
    InvalidRequestError,
    InvalidTopicError,
    MissingDependencyError,
    TopicExistsError,
    UnknownTopicError,
)

__all__ = [
    "BrokerOption",
    "RemotePartition",
    "RemoteTopic",
    "admin",
    "aiokafka_module",
    "bootstrap_of",
    "check_topic",
    "consumer",
    "create_topic",
    "delete_topic",
    "describe_topic",
    "list_topics",
    "producer",
    "translated",
]

BrokerOption = Annotated[
    str | None,
    typer.Option(
        "--broker",
        envvar="EVENTYARD_BROKER",
        show_envvar=True,
        help="HOST:PORT of a Kafka-protocol broker (eventyard serve, Kafka); "
        "replaces --data-dir. Needs the kafka extra.",
    ),
]

_INSTALL_HINT = "--broker needs aiokafka: pip install 'eventyard[kafka]'"

_USER_ERRORS: Mapping[int, type[EventyardError]] = {
    3: UnknownTopicError,
    17: InvalidTopicError,
    36: TopicExistsError,
    37: InvalidPartitionsError,
    40: InvalidConfigError,
    42: InvalidRequestError,
}
"""Kafka error codes that mean the request was wrong, mapped to the CLI's user mistakes."""


def aiokafka_module() -> Any:
    """The ``aiokafka`` package with the submodules used here loaded, or a
    :class:`MissingDependencyError` naming the extra to install.

    Imported by name, so nothing else here depends on how aiokafka is typed (it ships no
    ``py.typed``): everything from it is ``Any``.
    """
    try:
        aiokafka = importlib.import_module("aiokafka")
        for submodule in ("admin", "admin.config_resource", "errors", "structs"):
            importlib.import_module(f"aiokafka.{submodule}")
    except ImportError as exc:
        raise MissingDependencyError(_INSTALL_HINT) from exc
    # aiokafka logs each failed connection as an error before raising it; the raised error
    # becomes the command's one ``error:`` line, so the log lines would only repeat it.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    return aiokafka


def bootstrap_of(address: str) -> str:
    """Validate ``HOST:PORT`` (a :class:`ConfigError` naming ``--broker``) and return it."""
    host, port = parse_address("--broker", address)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@asynccontextmanager
async def translated(address: str) -> AsyncIterator[None]:
    """Turn aiokafka's and the socket's errors into one-line ``EventyardError``\\ s."""
    errors = aiokafka_module().errors
    try:
        yield
    except EventyardError:
        raise
    except errors.KafkaConnectionError as exc:
        raise EventyardError(f"cannot reach a Kafka broker at {address}") from exc
    except (errors.KafkaError, OSError, TimeoutError) as exc:
        raise EventyardError(f"Kafka broker at {address}: {exc or type(exc).__name__}") from exc


@asynccontextmanager
async def admin(address: str) -> AsyncIterator[Any]:
    """A started ``AIOKafkaAdminClient`` for ``address``, closed after the block."""
    kafka = aiokafka_module()
    bootstrap = bootstrap_of(address)
    async with translated(address):
        client = kafka.admin.AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="eventyard-cli", request_timeout_ms=15_000
        )
        await client.start()
        try:
            yield client
        finally:
            await client.close()


@asynccontextmanager
async def producer(address: str) -> AsyncIterator[Any]:
    """A started idempotent ``AIOKafkaProducer`` (``acks=all``), flushed and stopped after."""
    kafka = aiokafka_module()
    async with translated(address):
        client = kafka.AIOKafkaProducer(
            bootstrap_servers=bootstrap_of(address),
            client_id="eventyard-cli",
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=15_000,
        )
        await client.start()
        try:
            yield client
        finally:
            await client.stop()


@asynccontextmanager
async def consumer(address: str, *topics: str, **options: Any) -> AsyncIterator[Any]:
    """A started ``AIOKafkaConsumer`` (auto-commit off), stopped after the block."""
    kafka = aiokafka_module()
    async with translated(address):
        client = kafka.AIOKafkaConsumer(
            *topics,
            bootstrap_servers=bootstrap_of(address),
            client_id="eventyard-cli",
            enable_auto_commit=False,
            request_timeout_ms=15_000,
            **options,
        )
        await client.start()
        try:
            yield client
        finally:
            await client.stop()


async def _topic_config(kafka: Any, client: Any, name: str) -> dict[str, str]:
    """The topic's configs through DescribeConfigs, or none if the broker does not serve it
    (``eventyard serve`` does not yet)."""
    resources = kafka.admin.config_resource
    resource = resources.ConfigResource(resources.ConfigResourceType.TOPIC, name)
    try:
        responses = await client.describe_configs([resource])
    except kafka.errors.IncompatibleBrokerVersion:
        return {}
    config: dict[str, str] = {}
    for response in responses:
        for _code, _message, _type, _name, entries in response.resources:
            config.update({entry[0]: entry[1] for entry in entries if entry[1] is not None})
    return config


def _raise_for(code: int, message: str | None, subject: str) -> None:
    if code == 0:
        return
    error = _USER_ERRORS.get(code, EventyardError)
    name = aiokafka_module().errors.for_code(code).__name__
    raise error(message or f"{subject}: {name}")


@dataclass(frozen=True, slots=True)
class RemotePartition:
    """One partition as the Kafka protocol reports it: its retained offset range."""

    partition: int
    start_offset: int
    end_offset: int


@dataclass(frozen=True, slots=True)
class RemoteTopic:
    """A topic as the Kafka protocol reports it (no sizes on disk, no creation time)."""

    name: str
    partitions: tuple[RemotePartition, ...]
    config: dict[str, str]

    @property
    def message_count(self) -> int:
        return sum(p.end_offset - p.start_offset for p in self.partitions)

    def document(self) -> dict[str, Any]:
        """The ``--json`` shape of ``topics list``/``describe``, without what Kafka lacks."""
        return {
            "name": self.name,
            "partitions": len(self.partitions),
            "messages": self.message_count,
            "config": self.config,
            "partition_offsets": [
                {
                    "partition": p.partition,
                    "start_offset": p.start_offset,
                    "end_offset": p.end_offset,
                }
                for p in self.partitions
            ],
        }


async def create_topic(
    address: str, name: str, partitions: int, configs: Mapping[str, str]
) -> RemoteTopic:
    """Create ``name`` with ``partitions`` and ``configs``; the broker validates them."""
    kafka = aiokafka_module()
    async with admin(address) as client, translated(address):
        response = await client.create_topics(
            [kafka.admin.NewTopic(name, partitions, 1, topic_configs=dict(configs))]
        )
        for topic, code, *rest in response.topic_errors:
            _raise_for(code, rest[0] if rest else None, f"topic {topic!r}")
    return RemoteTopic(
        name, tuple(RemotePartition(p, 0, 0) for p in range(partitions)), dict(configs)
    )


async def delete_topic(address: str, name: str) -> None:
    """Delete ``name`` (unknown topics are the broker's UNKNOWN_TOPIC_OR_PARTITION)."""
    async with admin(address) as client, translated(address):
        await check_topic(address, name, client)
        response = await client.delete_topics([name])
        for topic, code, *rest in response.topic_error_codes:
            _raise_for(code, rest[0] if rest else None, f"topic {topic!r}")


async def check_topic(address: str, name: str, client: Any | None = None) -> None:
    """Raise :class:`UnknownTopicError` unless the broker has topic ``name``."""
    if client is None:
        async with admin(address) as opened, translated(address):
            names = await opened.list_topics()
    else:
        names = await client.list_topics()
    if name not in names:
        raise UnknownTopicError(f"unknown topic {name!r} on {address}")


async def list_topics(address: str) -> list[RemoteTopic]:
    """Every topic but Kafka's internal ones, with offsets and configs, sorted by name."""
    async with admin(address) as client, translated(address):
        names = sorted(n for n in await client.list_topics() if not n.startswith("__"))
    return [await describe_topic(address, name) for name in names]


async def describe_topic(address: str, name: str) -> RemoteTopic:
    """One topic's partitions, their offset ranges and its configs."""
    kafka = aiokafka_module()
    async with admin(address) as client, translated(address):
        await check_topic(address, name, client)
        (description,) = await client.describe_topics([name])
        _raise_for(description["error_code"], None, f"topic {name!r}")
        indexes = sorted(p["partition"] for p in description["partitions"])
        config = await _topic_config(kafka, client, name)
    async with consumer(address) as reader, translated(address):
        partitions = [kafka.TopicPartition(name, index) for index in indexes]
        starts = await reader.beginning_offsets(partitions)
        ends = await reader.end_offsets(partitions)
    return RemoteTopic(
        name,
        tuple(RemotePartition(tp.partition, starts[tp], ends[tp]) for tp in partitions),
        config,
    )
