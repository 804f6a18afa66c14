"""The exceptions eventyard raises, in one tree.

Every error a caller can act on derives from :class:`EventyardError`. Errors the Kafka
protocol also knows carry that protocol's numeric ``code`` so the Kafka front can answer
with it unchanged, and so moving an application to a real Kafka cluster keeps the same
meaning for each failure::

    EventyardError
    ├── ConfigError                      invalid setting, durability string, CLI argument
    │   └── MissingDependencyError       an optional extra is not installed (with the hint)
    ├── CorruptRecordError (2)           a record batch fails its length, magic or CRC-32C check
    ├── StorageError (56)                the log cannot be read or written
    │   ├── DataDirLockedError           another process holds the data directory
    │   ├── LogCorruptionError           damage in the middle of a segment
    │   └── DiskFullError                ENOSPC while appending; nothing was acknowledged
    └── BrokerError (-1)
        ├── OffsetOutOfRangeError (1)
        ├── UnknownTopicError (3)
        ├── MessageTooLargeError (10)
        ├── InvalidTopicError (17)
        ├── TopicExistsError (36)
        ├── InvalidPartitionsError (37)
        ├── InvalidConfigError (40)
        ├── InvalidRequestError (42)
        ├── ProducerError
        │   ├── OutOfOrderSequenceError (45)
        │   ├── DuplicateSequenceError (46)
        │   ├── InvalidProducerEpochError (47)
        │   └── UnknownProducerIdError (59)
        └── GroupError
            ├── CoordinatorNotAvailableError (15)
            ├── IllegalGenerationError (22)
            ├── InconsistentGroupProtocolError (23)
            ├── InvalidGroupIdError (24)
            ├── UnknownMemberIdError (25)
            ├── InvalidSessionTimeoutError (26)
            ├── RebalanceInProgressError (27)
            ├── NonEmptyGroupError (68)
            ├── GroupIdNotFoundError (69)
            └── MemberIdRequiredError (79)
    ├── EventError                       an event cannot be read, validated or handled
    │   ├── EventDecodeError             a record claims to be a CloudEvent and is malformed
    │   │   └── EventValidationError     the data does not match the event's type or version
    │   └── HandlerTimeoutError          a handler ran past its subscription's timeout
    └── TransportError                   a transport cannot reach or use its server
"""

from __future__ import annotations

__all__ = [
    "BrokerError",
    "ConfigError",
    "CoordinatorNotAvailableError",
    "CorruptRecordError",
    "DataDirLockedError",
    "DiskFullError",
    "DuplicateSequenceError",
    "EventDecodeError",
    "EventError",
    "EventValidationError",
    "EventyardError",
    "GroupError",
    "GroupIdNotFoundError",
    "HandlerTimeoutError",
    "IllegalGenerationError",
    "InconsistentGroupProtocolError",
    "InvalidConfigError",
    "InvalidGroupIdError",
    "InvalidPartitionsError",
    "InvalidProducerEpochError",
    "InvalidRequestError",
    "InvalidSessionTimeoutError",
    "InvalidTopicError",
    "LogCorruptionError",
    "MemberIdRequiredError",
    "MessageTooLargeError",
    "MissingDependencyError",
    "NonEmptyGroupError",
    "OffsetOutOfRangeError",
    "OutOfOrderSequenceError",
    "ProducerError",
    "RebalanceInProgressError",
    "StorageError",
    "TopicExistsError",
    "TransportError",
    "UnknownMemberIdError",
    "UnknownProducerIdError",
    "UnknownTopicError",
]


class EventyardError(Exception):
    """Base of every error eventyard raises on purpose."""

    code: int = -1
    """The Kafka protocol error code with the same meaning (-1: UNKNOWN_SERVER_ERROR)."""


class ConfigError(EventyardError):
    """A setting, configuration value or command-line argument is invalid."""

    code = 40


class MissingDependencyError(ConfigError):
    """An optional extra is not installed; the message says what to ``pip install``."""


class CorruptRecordError(EventyardError):
    """A record batch fails its length, magic byte or CRC-32C check."""

    code = 2


class StorageError(EventyardError):
    """The log on disk cannot be read or written."""

    code = 56


class DataDirLockedError(StorageError):
    """Another process holds the data directory's exclusive lock."""


class LogCorruptionError(StorageError):
    """Damage in the middle of a segment: reported with its offset range, never skipped."""


class DiskFullError(StorageError):
    """The device ran out of space while appending; the append was not acknowledged."""


class BrokerError(EventyardError):
    """A request the broker refuses."""


class OffsetOutOfRangeError(BrokerError):
    code = 1


class UnknownTopicError(BrokerError):
    code = 3


class MessageTooLargeError(BrokerError):
    code = 10


class InvalidTopicError(BrokerError):
    code = 17


class TopicExistsError(BrokerError):
    code = 36


class InvalidPartitionsError(BrokerError):
    code = 37


class InvalidConfigError(BrokerError):
    code = 40


class InvalidRequestError(BrokerError):
    code = 42


class ProducerError(BrokerError):
    """An idempotent or transactional producer's request breaks its sequence contract."""


class OutOfOrderSequenceError(ProducerError):
    code = 45


class DuplicateSequenceError(ProducerError):
    code = 46


class InvalidProducerEpochError(ProducerError):
    code = 47


class UnknownProducerIdError(ProducerError):
    code = 59


class GroupError(BrokerError):
    """A consumer-group request the coordinator refuses."""


class CoordinatorNotAvailableError(GroupError):
    code = 15


class IllegalGenerationError(GroupError):
    code = 22


class InconsistentGroupProtocolError(GroupError):
    code = 23


class InvalidGroupIdError(GroupError):
    code = 24


class UnknownMemberIdError(GroupError):
    code = 25


class InvalidSessionTimeoutError(GroupError):
    code = 26


class RebalanceInProgressError(GroupError):
    code = 27


class NonEmptyGroupError(GroupError):
    code = 68


class GroupIdNotFoundError(GroupError):
    code = 69


class MemberIdRequiredError(GroupError):
    code = 79


class EventError(EventyardError):
    """An event cannot be read, validated or handled."""


class EventDecodeError(EventError):
    """A record claims to be a CloudEvent (or a typed event) and cannot be decoded."""

    code = 2


class EventValidationError(EventDecodeError):
    """An event's data does not match its declared type or schema version."""


class HandlerTimeoutError(EventError):
    """A handler ran longer than its subscription's ``timeout``."""


class TransportError(EventyardError):
    """A transport cannot reach, or cannot use, its server."""
