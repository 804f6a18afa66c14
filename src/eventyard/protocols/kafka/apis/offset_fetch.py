"""OffsetFetch (API key 9), versions 1-5, onto ``GroupCoordinator.fetch_offsets``.

Partitions without a committed offset answer offset -1 with empty metadata and no error (what
consumers read as "use auto.offset.reset"). From v2 a null topic list asks for every committed
offset of the group, and group-level errors go in the top-level ``error_code``; in v1 they are
repeated on every partition. v5 adds the committed leader epoch.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from kio.schema.errors import ErrorCode

from eventyard.broker.groups import OffsetAndMetadata
from eventyard.errors import EventyardError
from eventyard.protocols.kafka.apis._entities import build, error_code, response_module
from eventyard.protocols.kafka.registry import RequestContext, register

__all__ = ["offset_fetch"]

API_KEY = 9
_NO_OFFSET = OffsetAndMetadata(-1)


@register(API_KEY, 1, 5)
async def offset_fetch(ctx: RequestContext, request: Any) -> Any:
    """Answer the committed offsets of the requested partitions (all of them for null topics)."""
    entities = response_module(API_KEY, ctx.api_version)
    wanted: dict[str, list[int]] | None = None
    if request.topics is not None:
        wanted = {t.name: list(t.partition_indexes) for t in request.topics}
    try:
        table = await ctx.broker.groups.fetch_offsets(
            request.group_id,
            None if wanted is None else [(t, p) for t, ps in wanted.items() for p in ps],
        )
    except EventyardError as error:
        return _failure(entities, wanted or {}, error_code(error))
    if wanted is None:
        wanted = defaultdict(list)
        for topic, partition in sorted(table):
            wanted[topic].append(partition)
    topics = tuple(
        build(
            entities.OffsetFetchResponseTopic,
            name=topic,
            partitions=tuple(
                _partition(entities, p, table.get((topic, p), _NO_OFFSET), ErrorCode.none)
                for p in partitions
            ),
        )
        for topic, partitions in wanted.items()
    )
    return build(entities.OffsetFetchResponse, topics=topics, error_code=ErrorCode.none)


def _partition(entities: Any, index: int, offset: OffsetAndMetadata, code: ErrorCode) -> Any:
    return build(
        entities.OffsetFetchResponsePartition,
        partition_index=index,
        committed_offset=offset.offset,
        committed_leader_epoch=offset.leader_epoch,
        metadata=offset.metadata,
        error_code=code,
    )


def _failure(entities: Any, wanted: dict[str, list[int]], code: ErrorCode) -> Any:
    """Group-level errors: top-level code from v2, and on every partition (v1 has no other)."""
    topics = tuple(
        build(
            entities.OffsetFetchResponseTopic,
            name=topic,
            partitions=tuple(_partition(entities, p, _NO_OFFSET, code) for p in partitions),
        )
        for topic, partitions in wanted.items()
    )
    return build(entities.OffsetFetchResponse, topics=topics, error_code=code)
