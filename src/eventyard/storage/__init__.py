"""eventyard.storage: a partition's durable log of record batches, on an injected filesystem.

Bytes and offsets only (no asyncio, no events): :class:`PartitionLog` appends Kafka record
batches verbatim to segment files, reads them back by offset or time, makes them durable
on :meth:`PartitionLog.flush` (and each segment a roll closes, in the background, whatever
the durability policy), recovers a torn tail after a crash, and applies retention and
compaction. :class:`DataDirLock` keeps a data directory to one process. All file I/O
goes through a :class:`FileSystem` (:class:`OSFileSystem` by default) so tests can inject
faults.
"""

from eventyard.storage.config import CleanupPolicy, Durability, DurabilityMode, LogConfig
from eventyard.storage.fs import File, FileSystem, OSFile, OSFileSystem
from eventyard.storage.lock import DataDirLock
from eventyard.storage.log import PartitionLog

__all__ = [
    "CleanupPolicy",
    "DataDirLock",
    "Durability",
    "DurabilityMode",
    "File",
    "FileSystem",
    "LogConfig",
    "OSFile",
    "OSFileSystem",
    "PartitionLog",
]
