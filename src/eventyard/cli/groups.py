"""``eventyard groups``: list consumer groups, describe their lag, reset their offsets.

Lag is computed as Kafka's tools compute it: a partition's end offset minus the group's
committed offset (the next offset the group will read); a partition without a committed
offset shows no lag rather than a guess, because where the group starts there depends on
the consumer's ``auto_offset_reset``.

``reset-offsets`` moves a group's committed offsets for one topic, as
``kafka-consumer-groups.sh --reset-offsets`` does: only while the group has no active
members (a live member would overwrite the reset with its next commit), clamped into each
partition's retained range, and previewed without change under ``--dry-run``.

With ``--broker HOST:PORT`` each command asks that broker through aiokafka instead
(ListGroups, DescribeGroups, OffsetFetch, ListOffsets; ``reset-offsets`` commits as a
member-less consumer of the group, as Kafka's tool does), so the same tables describe groups
on ``eventyard serve`` or a Kafka cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from eventyard.broker import LATEST, Broker
from eventyard.broker.groups import (
    CONSUMER_PROTOCOL_TYPE,
    GroupState,
    MemberDescription,
    OffsetAndMetadata,
    PartitionLag,
    decode_assignment,
    group_lag,
)
from eventyard.cli import remote
from eventyard.cli.output import JsonFlag, Output, help_without_command, plural
from eventyard.cli.remote import BrokerOption
from eventyard.cli.runner import DEFAULT_DATA_DIR, DataDir, open_broker, run
from eventyard.errors import (
    ConfigError,
    GroupIdNotFoundError,
    InvalidRequestError,
    NonEmptyGroupError,
)

__all__ = [
    "GroupView",
    "MemberView",
    "ResetTarget",
    "app",
    "describe_group",
    "parse_reset_target",
]

app = typer.Typer(
    help="List consumer groups, show their lag, reset their offsets.",
    rich_markup_mode="rich",
    add_completion=False,
)

app.callback(invoke_without_command=True)(help_without_command)


@dataclass(frozen=True, slots=True)
class MemberView:
    """A live member and the partitions it was assigned."""

    member_id: str
    client_id: str
    host: str
    partitions: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class GroupView:
    """A described group: state, members and per-partition lag (the broker's
    :class:`~eventyard.broker.groups.PartitionLag`)."""

    group_id: str
    state: str
    members: tuple[MemberView, ...]
    partitions: tuple[PartitionLag, ...]

    @property
    def total_lag(self) -> int:
        """Summed lag over partitions with a committed offset."""
        return sum(p.lag or 0 for p in self.partitions)

    def document(self) -> dict[str, Any]:
        """The ``--json`` shape of ``groups describe``."""
        return {
            "group": self.group_id,
            "state": self.state,
            "members": [
                {
                    "member_id": m.member_id,
                    "client_id": m.client_id,
                    "host": m.host,
                    "assignment": [{"topic": t, "partition": p} for t, p in m.partitions],
                }
                for m in self.members
            ],
            "partitions": [
                {
                    "topic": p.topic,
                    "partition": p.partition,
                    "committed_offset": p.committed,
                    "end_offset": p.log_end_offset,
                    "lag": p.lag,
                    "member_id": p.member_id or None,
                }
                for p in self.partitions
            ],
            "total_lag": self.total_lag,
        }


def _assigned(member: MemberDescription, protocol_type: str) -> tuple[tuple[str, int], ...]:
    return _member_partitions(member.assignment, protocol_type)


def _member_partitions(assignment: bytes, protocol_type: str) -> tuple[tuple[str, int], ...]:
    """A member's partitions, when its assignment is in the consumer protocol."""
    if protocol_type != CONSUMER_PROTOCOL_TYPE:
        return ()
    try:
        decoded = decode_assignment(assignment)
    except InvalidRequestError:
        return ()
    return tuple((topic, p) for topic, partitions in decoded.partitions for p in partitions)


async def describe_group(broker: Broker, group_id: str) -> GroupView:
    """Describe ``group_id``: its members with their assignment, and lag per partition.

    The coordinator reports an unknown group as ``Dead``; for a command that is the user's
    mistake, ``GroupIdNotFoundError``.
    """
    description = await broker.groups.describe_group(group_id)
    if description.state is GroupState.DEAD:
        raise GroupIdNotFoundError(f"group {group_id!r} does not exist")
    members = tuple(
        MemberView(m.member_id, m.client_id, m.client_host, _assigned(m, description.protocol_type))
        for m in description.members
    )

    async def log_end(topic: str, partition: int) -> int | None:
        return await broker.list_offset(topic, partition, LATEST)

    lags = await group_lag(broker.groups, group_id, log_end)
    return GroupView(group_id, description.state.value, members, tuple(lags))


async def describe_remote_group(client: Any, address: str, group_id: str) -> GroupView:
    """Describe ``group_id`` on the broker at ``address`` through aiokafka's admin client.

    An unknown group is ``Dead`` (as Kafka reports it) with nothing committed: for a command
    that is the user's mistake, ``GroupIdNotFoundError``.
    """
    (response,) = await client.describe_consumer_groups([group_id])
    (group,) = response.to_object()["groups"]
    if group["error_code"]:
        raise GroupIdNotFoundError(f"group {group_id!r}: error {group['error_code']}")
    committed = await client.list_consumer_group_offsets(group_id)
    if group["state"] == GroupState.DEAD.value and not committed:
        raise GroupIdNotFoundError(f"group {group_id!r} does not exist on {address}")
    members = tuple(
        MemberView(
            m["member_id"],
            m["client_id"],
            m["client_host"],
            _member_partitions(m["member_assignment"], group["protocol_type"]),
        )
        for m in group["members"]
    )
    owner = {tp: m.member_id for m in members for tp in m.partitions}
    # Offsets committed for a topic (or partition) since deleted are left out: asking for
    # its end offset would only wait out the request timeout.
    held = {
        (topic["topic"], partition["partition"])
        for topic in await client.describe_topics(sorted({tp.topic for tp in committed}))
        if not topic["error_code"]
        for partition in topic["partitions"]
    }
    live = [tp for tp in committed if (tp.topic, tp.partition) in held]
    ends: dict[Any, int] = {}
    if live:
        async with remote.consumer(address) as reader:
            ends = await reader.end_offsets(live)
    lags = tuple(
        PartitionLag(
            tp.topic,
            tp.partition,
            meta.offset if meta.offset >= 0 else None,
            ends[tp],
            ends[tp] - meta.offset if meta.offset >= 0 else None,
            owner.get((tp.topic, tp.partition), ""),
        )
        for tp, meta in sorted(committed.items())
        if tp in ends
    )
    return GroupView(group_id, group["state"], members, lags)


async def _remote_groups(address: str) -> list[GroupView]:
    async with remote.admin(address) as client, remote.translated(address):
        listed = sorted(group_id for group_id, *_ in await client.list_consumer_groups())
        return [await describe_remote_group(client, address, g) for g in listed]


async def _remote_group(address: str, group_id: str) -> GroupView:
    async with remote.admin(address) as client, remote.translated(address):
        return await describe_remote_group(client, address, group_id)


@dataclass(frozen=True, slots=True)
class ResetTarget:
    """Where ``reset-offsets`` moves a group: exactly one of the four kinds is set."""

    earliest: bool = False
    latest: bool = False
    timestamp_ms: int | None = None
    offset: int | None = None

    def describe(self) -> str:
        """Words for the summary line."""
        if self.earliest:
            return "the earliest offset"
        if self.latest:
            return "the latest offset"
        if self.timestamp_ms is not None:
            moment = datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)
            return f"events from {moment:%Y-%m-%d %H:%M:%S} UTC"
        return f"offset {self.offset}"


def parse_reset_target(
    *, earliest: bool, latest: bool, to_datetime: str | None, to_offset: int | None
) -> ResetTarget:
    """Check that exactly one target option was given and parse it.

    ``--to-datetime`` takes ISO 8601 (``2026-01-31T09:00:00Z``, ``2026-01-31T10:00+01:00``); a
    time without a UTC offset is read as local time.
    """
    given = [earliest, latest, to_datetime is not None, to_offset is not None]
    if sum(given) != 1:
        raise ConfigError(
            "reset-offsets needs exactly one of --to-earliest, --to-latest, "
            "--to-datetime or --to-offset"
        )
    if to_datetime is not None:
        try:
            moment = datetime.fromisoformat(to_datetime)
        except ValueError:
            raise ConfigError(
                f"--to-datetime {to_datetime!r}: expected ISO 8601, e.g. 2026-01-31T09:00:00Z"
            ) from None
        return ResetTarget(timestamp_ms=int(moment.astimezone().timestamp() * 1000))
    if to_offset is not None and to_offset < 0:
        raise ConfigError(f"--to-offset {to_offset}: offsets are >= 0")
    return ResetTarget(earliest=earliest, latest=latest, offset=to_offset)


async def _target_offsets(broker: Broker, topic: str, target: ResetTarget) -> dict[int, int]:
    """The new committed offset of each partition of ``topic``, clamped to its range."""
    info = broker.describe_topic(topic)
    offsets = {}
    for p in info.partitions:
        if target.earliest:
            offsets[p.partition] = p.start_offset
        elif target.latest:
            offsets[p.partition] = p.end_offset
        elif target.timestamp_ms is not None:
            found = await broker.list_offset(topic, p.partition, target.timestamp_ms)
            offsets[p.partition] = p.end_offset if found is None else found
        else:
            wanted = target.offset if target.offset is not None else p.start_offset
            offsets[p.partition] = min(max(wanted, p.start_offset), p.end_offset)
    return offsets


async def _remote_reset(
    address: str, group: str, topic: str, target: ResetTarget, dry_run: bool
) -> tuple[dict[int, int | None], dict[int, int]]:
    """``reset-offsets`` through a Kafka client: check the group is empty, work out the new
    offsets as the embedded path does, and commit them as a member-less consumer of the group
    (generation -1, which a broker accepts only while the group has no members)."""
    structs = remote.aiokafka_module().structs
    held = await remote.describe_topic(address, topic)
    async with remote.admin(address) as client, remote.translated(address):
        (response,) = await client.describe_consumer_groups([group])
        (described,) = response.to_object()["groups"]
        if described["members"]:
            raise NonEmptyGroupError(
                f"group {group!r} is {described['state']}; stop its consumers first"
            )
        committed = await client.list_consumer_group_offsets(group)
    tps = {p.partition: structs.TopicPartition(topic, p.partition) for p in held.partitions}
    current = {
        p: (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else None)
        for p, tp in tps.items()
    }
    async with remote.consumer(address, group_id=group) as member, remote.translated(address):
        found: dict[int, int | None] = {}
        if target.timestamp_ms is not None:
            times = await member.offsets_for_times({tp: target.timestamp_ms for tp in tps.values()})
            found = {tp.partition: (None if at is None else at.offset) for tp, at in times.items()}
        new = {}
        for p in held.partitions:
            if target.earliest:
                new[p.partition] = p.start_offset
            elif target.latest:
                new[p.partition] = p.end_offset
            elif target.timestamp_ms is not None:
                at = found.get(p.partition)
                new[p.partition] = p.end_offset if at is None else at
            else:
                wanted = target.offset if target.offset is not None else p.start_offset
                new[p.partition] = min(max(wanted, p.start_offset), p.end_offset)
        if not dry_run:
            member.assign(list(tps.values()))
            await member.commit({tps[p]: structs.OffsetAndMetadata(o, "") for p, o in new.items()})
    return current, new


@app.command("list")
def list_(
    data_dir: DataDir = DEFAULT_DATA_DIR, broker: BrokerOption = None, json: JsonFlag = False
) -> None:
    """List consumer groups with their state, members and total lag.

    [bold]Examples[/]

    $ eventyard groups list

    $ eventyard groups list --json
    """
    out = Output(json)

    async def work() -> list[GroupView]:
        async with open_broker(data_dir) as broker:
            listings = await broker.groups.list_groups()
            return [await describe_group(broker, g.group_id) for g in listings]

    groups = run(_remote_groups(broker) if broker is not None else work())
    if out.json_mode:
        out.json(
            [
                {
                    "group": g.group_id,
                    "state": g.state,
                    "members": len(g.members),
                    "total_lag": g.total_lag,
                }
                for g in groups
            ]
        )
        return
    if not groups:
        out.note("no consumer groups yet: eventyard consume TOPIC --group NAME")
        return
    out.table(
        ["group", "state", "members", "total lag"],
        [(g.group_id, g.state, len(g.members), g.total_lag) for g in groups],
        numeric=["members", "total lag"],
    )


@app.command("describe")
def describe(
    group: Annotated[str, typer.Argument(help="Consumer group id.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    broker: BrokerOption = None,
    json: JsonFlag = False,
) -> None:
    """Show a group's members, assignment, committed offsets, end offsets and lag.

    [bold]Examples[/]

    $ eventyard groups describe valuation

    $ eventyard groups describe valuation --json
    """
    out = Output(json)

    async def work() -> GroupView:
        async with open_broker(data_dir) as broker:
            return await describe_group(broker, group)

    view = run(_remote_group(broker, group) if broker is not None else work())
    if out.json_mode:
        out.json(view.document())
        return
    out.line(f"group [bold]{view.group_id}[/]: {view.state}, {plural(len(view.members), 'member')}")
    if view.members:
        out.table(
            ["member", "client", "host", "assignment"],
            [
                (m.member_id, m.client_id, m.host, _partitions_text(m.partitions))
                for m in view.members
            ],
        )
    out.table(
        ["topic", "partition", "committed", "end offset", "lag"],
        [(p.topic, p.partition, p.committed, p.log_end_offset, p.lag) for p in view.partitions],
        numeric=["partition", "committed", "end offset", "lag"],
    )


def _partitions_text(partitions: tuple[tuple[str, int], ...]) -> str:
    return ", ".join(f"{topic}-{partition}" for topic, partition in partitions) or "-"


@app.command("reset-offsets")
def reset_offsets(
    group: Annotated[str, typer.Argument(help="Consumer group id (must have no live members).")],
    topic: Annotated[str, typer.Option("--topic", "-t", help="Topic whose offsets move.")],
    to_earliest: Annotated[
        bool, typer.Option("--to-earliest", help="Move to each partition's first offset.")
    ] = False,
    to_latest: Annotated[
        bool, typer.Option("--to-latest", help="Move to each partition's end (skip all).")
    ] = False,
    to_datetime: Annotated[
        str | None,
        typer.Option("--to-datetime", help="Move to the first event at or after this ISO time."),
    ] = None,
    to_offset: Annotated[
        int | None, typer.Option("--to-offset", help="Move to this offset (clamped).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the new offsets without committing them.")
    ] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    broker: BrokerOption = None,
    json: JsonFlag = False,
) -> None:
    """Move a group's committed offsets for one topic, to replay or to skip events.

    [bold]Examples[/]

    $ eventyard groups reset-offsets valuation -t listings --to-earliest

    $ eventyard groups reset-offsets valuation -t listings --to-datetime 2026-01-31T09:00Z

    $ eventyard groups reset-offsets valuation -t listings --to-offset 100 --dry-run
    """
    target = parse_reset_target(
        earliest=to_earliest, latest=to_latest, to_datetime=to_datetime, to_offset=to_offset
    )
    out = Output(json)

    async def work() -> tuple[dict[int, int | None], dict[int, int]]:
        async with open_broker(data_dir) as broker:
            new = await _target_offsets(broker, topic, target)
            committed = await broker.groups.fetch_offsets(group)
            current = {
                p: (committed[(topic, p)].offset if (topic, p) in committed else None) for p in new
            }
            if not dry_run:
                await broker.groups.reset_offsets(
                    group, {(topic, p): OffsetAndMetadata(o) for p, o in new.items()}
                )
            return current, new

    if broker is not None:
        current, new = run(_remote_reset(broker, group, topic, target, dry_run))
    else:
        current, new = run(work())
    if out.json_mode:
        out.json(
            {
                "group": group,
                "topic": topic,
                "dry_run": dry_run,
                "partitions": [
                    {"partition": p, "current_offset": current[p], "new_offset": new[p]}
                    for p in sorted(new)
                ],
            }
        )
        return
    verb = "would move" if dry_run else "moved"
    out.line(f"{verb} group [bold]{group}[/] on {topic} to {target.describe()}")
    out.table(
        ["partition", "current offset", "new offset"],
        [(p, current[p], new[p]) for p in sorted(new)],
        numeric=["partition", "current offset", "new offset"],
    )
