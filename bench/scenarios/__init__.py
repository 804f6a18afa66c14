"""The scenarios of ``python -m bench``, one module each, in the order the table shows them.

1. ``produce``: in-process produce against Redis Streams ``XADD`` (target >= 3x).
2. ``consume``: in-process fetch and decode against ``XREADGROUP`` + ``XACK`` (>= 2x);
   ``consumer``: the same through ``Consumer.getmany`` in a group with commits (>= 2x).
3. ``always``: 8 concurrent producers with ``always`` durability (>= 300k events/s).
4. ``append``: `PartitionLog` append bandwidth against raw writes (>= 70% of raw).
5. ``recovery``: opening a ~1 GiB log after SIGKILL (< 2 s).
6. ``memory``: broker RSS over 10 million events (flat: < 64 MiB growth).

``scratch`` opens the throwaway brokers the scenarios use; ``bench.batches`` and
``bench.probes`` hold the pre-built batches and the child processes some scenarios need.
"""

from __future__ import annotations

from bench.harness import Scenario
from bench.scenarios import (
    append_bandwidth,
    consume,
    durable_produce,
    memory,
    produce,
    recovery,
)

__all__ = ["SCENARIOS"]

SCENARIOS: tuple[Scenario, ...] = (
    produce.SCENARIO,
    consume.SCENARIO,
    consume.CONSUMER_SCENARIO,
    durable_produce.SCENARIO,
    append_bandwidth.SCENARIO,
    recovery.SCENARIO,
    memory.SCENARIO,
)
"""Every scenario, in table order."""
