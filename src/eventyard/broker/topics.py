"""Topic names, the durable topic catalog and the shapes topics are described with.

Names follow Kafka's rules (``org.apache.kafka.common.internals.Topic.validate``): 1 to 249
characters from ``[a-zA-Z0-9._-]``, not ``.`` or ``..``. Like Kafka, two names that differ
only by ``.`` versus ``_`` collide (they map to the same metric names), so the second is
refused, and Kafka's internal topic names cannot be created by users.

The catalog is one JSON file, ``<data_dir>/topics.json``, rewritten atomically (temporary
file, fsync, rename, fsync of the directory) on every create and delete; partition ``p`` of
topic ``t`` lives in ``<data_dir>/t-p/`` as in Kafka. A topic exists once the catalog says
so: a crash after the catalog write but before the directories exist leaves empty
partitions, which opening the logs creates; a crash during a delete leaves orphan partition
directories, which :func:`orphan_directories` finds so the broker can remove them at open.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from eventyard.broker.config import TopicConfig
from eventyard.broker.metafile import read_json, write_atomically
from eventyard.errors import InvalidTopicError, TopicExistsError, UnknownTopicError
from eventyard.storage import FileSystem

__all__ = [
    "CATALOG_FILE",
    "INTERNAL_TOPICS",
    "MAX_NAME_LENGTH",
    "PartitionInfo",
    "TopicCatalog",
    "TopicInfo",
    "TopicMeta",
    "orphan_directories",
    "partition_directory",
    "validate_topic_name",
]

MAX_NAME_LENGTH: Final = 249
CATALOG_FILE: Final = "topics.json"
INTERNAL_TOPICS: Final = frozenset({"__consumer_offsets", "__transaction_state"})
_LEGAL: Final = re.compile(r"[a-zA-Z0-9._-]+")
_PARTITION_DIR: Final = re.compile(r"(?P<topic>[a-zA-Z0-9._-]+)-(?P<partition>0|[1-9][0-9]*)")


def validate_topic_name(name: str) -> None:
    """Raise :class:`InvalidTopicError` with the reason when ``name`` breaks Kafka's rules."""
    if not isinstance(name, str) or not name:
        raise InvalidTopicError("topic name is illegal: it cannot be empty")
    if name in (".", ".."):
        raise InvalidTopicError(f"topic name {name!r} is illegal: it cannot be '.' or '..'")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidTopicError(
            f"topic name is illegal: it is {len(name)} characters long, "
            f"at most {MAX_NAME_LENGTH} are allowed"
        )
    if _LEGAL.fullmatch(name) is None:
        raise InvalidTopicError(
            f"topic name {name!r} is illegal: it contains a character other than "
            "ASCII alphanumerics, '.', '_' and '-'"
        )


def partition_directory(data_dir: Path, topic: str, partition: int) -> Path:
    """Return the directory of one partition's log: ``<data_dir>/<topic>-<partition>``."""
    return data_dir / f"{topic}-{partition}"


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """One partition as described: its offsets and the bytes it holds on disk."""

    partition: int
    start_offset: int
    end_offset: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A topic as described: name, effective config and its partitions."""

    name: str
    config: TopicConfig
    partitions: tuple[PartitionInfo, ...]
    created_ms: int

    @property
    def size_bytes(self) -> int:
        """Bytes held by all partitions."""
        return sum(p.size_bytes for p in self.partitions)

    @property
    def message_count(self) -> int:
        """Offsets currently retained (end minus start, summed; compaction leaves gaps)."""
        return sum(p.end_offset - p.start_offset for p in self.partitions)


class _TopicEntry(msgspec.Struct):
    name: str
    partitions: int
    configs: dict[str, str]
    created_ms: int


class _Catalog(msgspec.Struct):
    version: int
    topics: list[_TopicEntry]


@dataclass(frozen=True, slots=True)
class TopicMeta:
    """A catalog entry: the topic's stored config (durability may be unset) and birth time."""

    name: str
    config: TopicConfig
    created_ms: int


class TopicCatalog:
    """The durable set of topics; the broker is its only user and serializes changes.

    ``add`` and ``remove`` write and fsync the catalog file: call them off the event loop.
    """

    __slots__ = ("_fs", "_path", "_topics")

    def __init__(self, data_dir: Path, fs: FileSystem) -> None:
        self._fs = fs
        self._path = data_dir / CATALOG_FILE
        self._topics: dict[str, TopicMeta] = {}
        catalog = read_json(fs, self._path, _Catalog)
        if catalog is not None:
            for entry in catalog.topics:
                config = TopicConfig.from_kafka(entry.configs, partitions=entry.partitions)
                self._topics[entry.name] = TopicMeta(entry.name, config, entry.created_ms)

    def __contains__(self, name: object) -> bool:
        return name in self._topics

    def get(self, name: str) -> TopicMeta:
        """Return the entry of ``name`` or raise :class:`UnknownTopicError`."""
        try:
            return self._topics[name]
        except KeyError:
            raise UnknownTopicError(f"unknown topic {name!r}") from None

    def names(self) -> list[str]:
        """Return every topic name, sorted."""
        return sorted(self._topics)

    def check_new(self, name: str) -> None:
        """Raise unless ``name`` may be created now (valid, not internal, no collision)."""
        validate_topic_name(name)
        if name in INTERNAL_TOPICS:
            raise InvalidTopicError(f"topic name {name!r} is reserved for internal use")
        if name in self._topics:
            raise TopicExistsError(f"topic {name!r} already exists")
        folded = name.replace(".", "_")
        for existing in self._topics:
            if existing.replace(".", "_") == folded:
                raise InvalidTopicError(
                    f"topic {name!r} collides with existing topic {existing!r} "
                    "('.' and '_' are the same in metric names)"
                )

    def add(self, name: str, config: TopicConfig) -> TopicMeta:
        """Validate, then durably add a topic; return its entry."""
        self.check_new(name)
        meta = TopicMeta(name, config, int(time.time() * 1000))
        topics = {**self._topics, name: meta}
        self._write(topics)
        self._topics = topics
        return meta

    def remove(self, name: str) -> TopicMeta:
        """Durably remove a topic from the catalog; return the removed entry."""
        meta = self.get(name)
        topics = {key: value for key, value in self._topics.items() if key != name}
        self._write(topics)
        self._topics = topics
        return meta

    def _write(self, topics: dict[str, TopicMeta]) -> None:
        entries = [
            _TopicEntry(m.name, m.config.partitions, m.config.to_kafka(), m.created_ms)
            for m in sorted(topics.values(), key=lambda m: m.name)
        ]
        data = msgspec.json.encode(_Catalog(version=1, topics=entries))
        write_atomically(self._fs, self._path, data)


def orphan_directories(names: list[str], catalog: TopicCatalog) -> list[str]:
    """Return the entries of ``names`` (a data-dir listing) that are partition directories
    of no catalogued partition: leftovers of a delete interrupted by a crash."""
    orphans = []
    for name in names:
        match = _PARTITION_DIR.fullmatch(name)
        if match is None:
            continue
        topic, partition = match["topic"], int(match["partition"])
        if topic in catalog and partition < catalog.get(topic).config.partitions:
            continue
        orphans.append(name)
    return sorted(orphans)
