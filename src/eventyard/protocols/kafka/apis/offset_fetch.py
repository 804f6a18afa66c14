"""OffsetFetch (API key 9), versions 0-5, onto ``GroupCoordinator.fetch_offsets``.

Versions 1-5 are kio's, v0 kafka-python's (kio's oldest is 1). Kafka answered v0 from
ZooKeeper; eventyard answers it from the same group offsets store as v1, so a v0 reader sees
what any version committed. Partitions without a committed offset answer offset -1 with empty
metadata and no error (what consumers read as "use auto.offset.reset"). From v2 a null topic
list asks for every committed offset of the group, and group-level errors go in the top-level
``error_code``; in v0-1 they are repeated on every partition. v5 adds the committed leader
epoch.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from kio.schema.errors import ErrorCode

from eventyard.broker.groups import OffsetAndMetadata
from eventyard.errors import EventyardError
from eventyard.protocols.kafka.apis import _kafka_python
from eventyard.protocols.kafka.apis._entities import build, error_code, response_module
from eventyard.protocols.kafka.codecs import KafkaPython
from eventyard.protocols.kafka.registry import RequestContext, register

__all__ = ["offset_fetch", "offset_fetch_v0"]

API_KEY = 9
_NO_OFFSET = OffsetAndMetadata(-1)
_Wanted = dict[str, list[int]]
_Table = dict[tuple[str, int], OffsetAndMetadata]


async def _fetch(ctx: RequestContext, request: Any) -> tuple[_Wanted, _Table, ErrorCode]:
    """The partitions to answer (every committed one for null topics), their committed
    offsets, and the group-level error code (the table is then empty)."""
    wanted: _Wanted | None = None
    if request.topics is not None:
        wanted = {t.name: list(t.partition_indexes) for t in request.topics}
    try:
        table = await ctx.broker.groups.fetch_offsets(
            request.group_id,
            None if wanted is None else [(t, p) for t, ps in wanted.items() for p in ps],
        )
    except EventyardError as error:
        return wanted or {}, {}, error_code(error)
    if wanted is None:
        wanted = defaultdict(list)
        for topic, partition in sorted(table):
            wanted[topic].append(partition)
    return wanted, table, ErrorCode.none


@register(API_KEY, 1, 5)
async def offset_fetch(ctx: RequestContext, request: Any) -> Any:
    """Answer the committed offsets of the requested partitions (all of them for null topics)."""
    entities = response_module(API_KEY, ctx.api_version)
    wanted, table, code = await _fetch(ctx, request)
    topics = tuple(
        build(
            entities.OffsetFetchResponseTopic,
            name=topic,
            partitions=tuple(
                _partition(entities, p, table.get((topic, p), _NO_OFFSET), code) for p in partitions
            ),
        )
        for topic, partitions in wanted.items()
    )
    return build(entities.OffsetFetchResponse, topics=topics, error_code=code)


def _partition(entities: Any, index: int, offset: OffsetAndMetadata, code: ErrorCode) -> Any:
    return build(
        entities.OffsetFetchResponsePartition,
        partition_index=index,
        committed_offset=offset.offset,
        committed_leader_epoch=offset.leader_epoch,
        metadata=offset.metadata,
        error_code=code,
    )


_V0 = KafkaPython(_kafka_python.OffsetFetchRequest, _kafka_python.OffsetFetchResponse)


@register(API_KEY, 0, 0, codec=_V0)
async def offset_fetch_v0(ctx: RequestContext, request: Any) -> Any:
    """OffsetFetch v0: the same lookup, answered with kafka-python's entities."""
    wanted, table, code = await _fetch(ctx, request)
    response = _kafka_python.OffsetFetchResponse
    topic_response = response.OffsetFetchResponseTopic
    return response(
        topics=[
            topic_response(
                name=topic,
                partitions=[
                    topic_response.OffsetFetchResponsePartition(
                        partition_index=p,
                        committed_offset=table.get((topic, p), _NO_OFFSET).offset,
                        metadata=table.get((topic, p), _NO_OFFSET).metadata,
                        error_code=code,
                    )
                    for p in partitions
                ],
            )
            for topic, partitions in wanted.items()
        ]
    )
