"""``eventyard topics``: create, list, describe and delete topics.

Topic settings use Kafka's config names (``retention.ms``, ``cleanup.policy``,
``segment.bytes``, ``eventyard.durability``, ...) so a command line written for
``kafka-topics.sh`` reads the same here; the broker validates every value and names the bad
one. With ``--broker HOST:PORT`` each command goes through aiokafka's admin client to that
broker instead (``cli.remote``); sizes on disk are not part of the Kafka protocol, so they
are left out there.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from eventyard.broker import TopicConfig, TopicInfo
from eventyard.cli import remote
from eventyard.cli.output import JsonFlag, Output, help_without_command, plural
from eventyard.cli.remote import BrokerOption, RemoteTopic
from eventyard.cli.runner import DEFAULT_DATA_DIR, DataDir, open_broker, run
from eventyard.errors import ConfigError

__all__ = ["app", "parse_configs", "topic_document"]

app = typer.Typer(
    help="Create, list, describe and delete topics.",
    rich_markup_mode="rich",
    add_completion=False,
)

app.callback(invoke_without_command=True)(help_without_command)


def parse_configs(items: list[str]) -> dict[str, str]:
    """Turn repeated ``--config key=value`` options into a mapping (the last value wins)."""
    configs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--config {item!r}: expected key=value, e.g. retention.ms=60000")
        configs[name.strip()] = value.strip()
    return configs


def topic_document(info: TopicInfo) -> dict[str, Any]:
    """A topic as a JSON-ready mapping (the ``--json`` shape of list and describe)."""
    return {
        "name": info.name,
        "partitions": len(info.partitions),
        "messages": info.message_count,
        "size_bytes": info.size_bytes,
        "created_ms": info.created_ms,
        "config": info.config.to_kafka(),
        "partition_offsets": [
            {
                "partition": p.partition,
                "start_offset": p.start_offset,
                "end_offset": p.end_offset,
                "size_bytes": p.size_bytes,
            }
            for p in info.partitions
        ],
    }


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Topic name: letters, digits, '.', '_' or '-'.")],
    partitions: Annotated[
        int, typer.Option("--partitions", "-p", help="Number of partitions (1-10000).")
    ] = 1,
    config: Annotated[
        list[str] | None,
        typer.Option(
            "--config", "-c", help="A topic setting as key=value (Kafka names); repeatable."
        ),
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    broker: BrokerOption = None,
    json: JsonFlag = False,
) -> None:
    """Create a topic.

    [bold]Examples[/]

    $ eventyard topics create listings --partitions 3

    $ eventyard topics create owners -c cleanup.policy=compact -c retention.ms=-1
    """
    out = Output(json)
    if broker is not None:
        created = run(remote.create_topic(broker, name, partitions, parse_configs(config or [])))
        _created(out, created.name, len(created.partitions), created.document())
        return
    topic_config = TopicConfig.from_kafka(parse_configs(config or []), partitions=partitions)

    async def work() -> TopicInfo:
        async with open_broker(data_dir, create=True) as broker:
            return await broker.create_topic(name, topic_config)

    info = run(work())
    _created(out, info.name, len(info.partitions), topic_document(info))


def _created(out: Output, name: str, partitions: int, document: dict[str, Any]) -> None:
    if out.json_mode:
        out.json(document)
    else:
        out.line(f"created topic [bold]{name}[/] with {plural(partitions, 'partition')}")


@app.command("list")
def list_(
    data_dir: DataDir = DEFAULT_DATA_DIR, broker: BrokerOption = None, json: JsonFlag = False
) -> None:
    """List topics with their partitions, message counts and sizes.

    [bold]Examples[/]

    $ eventyard topics list

    $ eventyard topics list --json
    """
    out = Output(json)
    if broker is not None:
        _list_remote(out, run(remote.list_topics(broker)))
        return

    async def work() -> list[TopicInfo]:
        async with open_broker(data_dir) as broker:
            return broker.list_topics()

    infos = run(work())
    if out.json_mode:
        out.json([topic_document(info) for info in infos])
        return
    if not infos:
        out.note("no topics yet: eventyard topics create NAME")
        return
    out.table(
        ["topic", "partitions", "messages", "size (bytes)", "cleanup.policy"],
        [
            (i.name, len(i.partitions), i.message_count, i.size_bytes, i.config.cleanup_policy)
            for i in infos
        ],
        numeric=["partitions", "messages", "size (bytes)"],
    )


def _list_remote(out: Output, topics: list[RemoteTopic]) -> None:
    if out.json_mode:
        out.json([topic.document() for topic in topics])
        return
    if not topics:
        out.note("no topics yet: eventyard topics create NAME --broker HOST:PORT")
        return
    out.table(
        ["topic", "partitions", "messages", "cleanup.policy"],
        [
            (t.name, len(t.partitions), t.message_count, t.config.get("cleanup.policy", ""))
            for t in topics
        ],
        numeric=["partitions", "messages"],
    )


@app.command("describe")
def describe(
    name: Annotated[str, typer.Argument(help="Topic to describe.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    broker: BrokerOption = None,
    json: JsonFlag = False,
) -> None:
    """Show a topic's settings and each partition's offsets and size.

    [bold]Examples[/]

    $ eventyard topics describe listings

    $ eventyard topics describe listings --json
    """
    out = Output(json)
    if broker is not None:
        _describe_remote(out, run(remote.describe_topic(broker, name)))
        return

    async def work() -> TopicInfo:
        async with open_broker(data_dir) as broker:
            return broker.describe_topic(name)

    info = run(work())
    if out.json_mode:
        out.json(topic_document(info))
        return
    out.table(
        ["partition", "start offset", "end offset", "messages", "size (bytes)"],
        [
            (p.partition, p.start_offset, p.end_offset, p.end_offset - p.start_offset, p.size_bytes)
            for p in info.partitions
        ],
        title=f"topic {info.name}",
        numeric=["partition", "start offset", "end offset", "messages", "size (bytes)"],
    )
    out.table(["config", "value"], sorted(info.config.to_kafka().items()))


def _describe_remote(out: Output, topic: RemoteTopic) -> None:
    if out.json_mode:
        out.json(topic.document())
        return
    out.table(
        ["partition", "start offset", "end offset", "messages"],
        [
            (p.partition, p.start_offset, p.end_offset, p.end_offset - p.start_offset)
            for p in topic.partitions
        ],
        title=f"topic {topic.name}",
        numeric=["partition", "start offset", "end offset", "messages"],
    )
    if topic.config:  # empty when the broker does not serve DescribeConfigs
        out.table(["config", "value"], sorted(topic.config.items()))


@app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="Topic to delete, with all its events.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    broker: BrokerOption = None,
    json: JsonFlag = False,
) -> None:
    """Delete a topic and every event in it.

    [bold]Examples[/]

    $ eventyard topics delete listings
    """
    out = Output(json)

    async def work() -> None:
        async with open_broker(data_dir) as broker:
            await broker.delete_topic(name)

    run(remote.delete_topic(broker, name) if broker is not None else work())
    if out.json_mode:
        out.json({"deleted": name})
    else:
        out.line(f"deleted topic [bold]{name}[/]")
