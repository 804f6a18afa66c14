"""The Kafka wire protocol front: framing, request dispatch and one module per API key."""

from eventyard.protocols.kafka.registry import RequestContext, load_all, lookup, register, supported
from eventyard.protocols.kafka.server import KafkaServer

__all__ = ["KafkaServer", "RequestContext", "load_all", "lookup", "register", "supported"]
