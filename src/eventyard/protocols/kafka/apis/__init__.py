"""Kafka API handlers, one module per API key; each registers itself on import.

``eventyard.protocols.kafka.registry.load_all`` imports every module of this package, so
adding an API means adding a module here and nothing else.
"""

__all__: list[str] = []
