"""eventyard.client: the Python API applications use (asyncio first, sync wrappers).

- :class:`Producer` sends records (idempotent by default) given one by one or as
  :class:`ProducerRecord` batches; :class:`RecordMetadata` and :class:`BatchMetadata` say
  where they landed;
- :class:`Consumer` reads them, alone or in a consumer group, as :class:`ConsumerRecord`
  values keyed by :class:`TopicPartition` (aiokafka's names);
- :class:`SyncBroker`, :class:`SyncProducer`, :class:`SyncConsumer` drive the same objects
  from synchronous code on a private event-loop thread.
"""

from eventyard.client.consumer import Consumer, ConsumerRecord, TopicPartition
from eventyard.client.producer import BatchMetadata, Producer, ProducerRecord, RecordMetadata
from eventyard.client.sync import SyncBroker, SyncConsumer, SyncProducer

__all__ = [
    "BatchMetadata",
    "Consumer",
    "ConsumerRecord",
    "Producer",
    "ProducerRecord",
    "RecordMetadata",
    "SyncBroker",
    "SyncConsumer",
    "SyncProducer",
    "TopicPartition",
]
