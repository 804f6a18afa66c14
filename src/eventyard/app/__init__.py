"""eventyard.app: the framework applications write against.

- :class:`App` holds a transport, the handlers subscribed with ``@app.subscribe`` and a
  publisher of typed events;
- :class:`Publish` is what a handler returns to publish follow-up events, :class:`Context`
  what a handler's second parameter receives;
- :class:`RetryPolicy`, :class:`BreakerPolicy` and the idempotency stores
  (:class:`SQLiteDedupeStore`, :class:`MemoryDedupeStore`) configure the reliability
  patterns each subscription has built in; :class:`SubscriptionStats` counts what happened.

``docs/app.md`` says what each setting guarantees.
"""

from eventyard.app.app import App
from eventyard.app.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from eventyard.app.context import Context, Publish
from eventyard.app.deadletter import DeadLetter, parse_dead_letter
from eventyard.app.idempotency import DedupeStore, MemoryDedupeStore, SQLiteDedupeStore
from eventyard.app.retry import RetryPolicy
from eventyard.app.stats import SubscriptionStats
from eventyard.app.subscription import Subscription, dlq_topic, retry_topic

__all__ = [
    "App",
    "BreakerPolicy",
    "BreakerState",
    "CircuitBreaker",
    "Context",
    "DeadLetter",
    "DedupeStore",
    "MemoryDedupeStore",
    "Publish",
    "RetryPolicy",
    "SQLiteDedupeStore",
    "Subscription",
    "SubscriptionStats",
    "dlq_topic",
    "parse_dead_letter",
    "retry_topic",
]
