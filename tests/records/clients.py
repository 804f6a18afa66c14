"""The record codecs of real Kafka clients, to cross-check ours against.

kafka-python 3 reads its protocol schemas with ``importlib.resources.read_text``, which
warns with a DeprecationWarning on import; the suite turns warnings into errors, so the
import alone runs with that warning silenced. aiokafka's ``default_records`` is its C
extension; ``_DefaultRecordBatchBuilderPy`` and ``_DefaultRecordBatchPy`` its pure-Python
fallback (used under ``AIOKAFKA_NO_EXTENSIONS``), checked too since users run either.
"""

from __future__ import annotations

import warnings

from aiokafka import codec as aiokafka_codec
from aiokafka.record import default_records as aiokafka_records

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.record import default_records as kafka_records

__all__ = ["aiokafka_codec", "aiokafka_records", "kafka_records"]
