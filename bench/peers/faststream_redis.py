"""FastStream's Redis Streams subscriber, a no-op handler on a typed event, one message per call
or a batch per call.

The stream is filled before the clock starts with pipelined ``XADD stream * __data__ MESSAGE``,
500 commands per round trip, where MESSAGE is exactly what ``RedisBroker.publish(body,
stream=...)`` would write: the event's JSON in FastStream's default binary message format
(``BinaryMessageFormatV1``) with a ``content-type: application/json`` header and a correlation
id. A consumer group is created at the start of the stream (``XGROUP CREATE ... 0``; FastStream
would create it at ``$``, after the pre-loaded entries), then a ``RedisBroker`` with one
subscriber, ``StreamSub(stream, group=..., consumer=...)`` and, for the batch mode,
``batch=True`` with ``max_records`` entries per read, decodes every message into a pydantic
model (FastStream's typed-handler path through fast-depends) and calls the handler, which
counts. FastStream acknowledges (``XACK``) each message, or each batch, after its handler
returns.

The clock starts before ``broker.start()`` and stops once the handler has seen every event and
``XPENDING`` reports none left unacknowledged (handled and acknowledged, as eventyard's side is
handled and committed). The broker runs with ``logger=None``: FastStream logs two lines per
message by default, which a careful user turns off for throughput, and the figure should not be
a logging benchmark.

The stream (and with it the group) is deleted afterwards, and :meth:`FastStreamRedis.close`
deletes every key the object named.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

import pydantic

from bench.events import Event
from bench.peers import PeerUnavailable

__all__ = ["FastStreamRedis", "Listing", "ListingData", "connect", "describe"]

PRELOAD_BATCH = 500
"""XADD commands per pipelined round trip while filling the stream (untimed)."""

_GROUP = "bench"
_CONSUMER = "bench-1"


class ListingData(pydantic.BaseModel):
    """The ``data`` member of a generated event."""

    price: int
    beds: int
    city: str
    street: str


class Listing(pydantic.BaseModel):
    """A generated event as the FastStream handler receives it, validated by pydantic."""

    id: str
    type: str
    source: str
    time: str
    subject: str
    data: ListingData


def describe() -> str:
    """FastStream's and redis-py's versions, for the notes under the table."""
    from importlib.metadata import version

    return f"FastStream {version('faststream')}, redis-py {version('redis')}"


def connect(url: str, key_prefix: str) -> tuple[FastStreamRedis | None, str]:
    """The peer, or ``None`` and the reason it cannot be measured (for the peer column)."""
    try:
        return FastStreamRedis(url, key_prefix), ""
    except PeerUnavailable as exc:
        return None, str(exc)


class FastStreamRedis:
    """FastStream against the Redis server under test, owning the stream keys it creates."""

    def __init__(self, url: str, key_prefix: str) -> None:
        """Check that FastStream is installed and Redis answers, or raise PeerUnavailable."""
        try:
            import faststream.redis  # noqa: F401
            import redis
        except ImportError as exc:
            raise PeerUnavailable(
                f"FastStream is not installed (pip install 'faststream[redis]'): {exc}"
            ) from exc
        self._url = url
        self._client: Any = redis.Redis.from_url(url, socket_timeout=30)
        try:
            self._client.ping()
        except (redis.RedisError, OSError) as exc:
            raise PeerUnavailable(f"Redis at {url} is unreachable ({exc})") from exc
        self._prefix = key_prefix
        self._keys: set[str] = set()

    def key(self, name: str) -> str:
        """The full key for ``name`` under this run's prefix; deleted by :meth:`close`."""
        full = f"{self._prefix}{name}"
        self._keys.add(full)
        return full

    def handle(
        self,
        name: str,
        events: Sequence[Event],
        total: int,
        *,
        batch: bool,
        max_records: int = PRELOAD_BATCH,
    ) -> float:
        """Pre-load ``total`` events (cycling ``events``) into a new stream, then handle them
        all through a FastStream subscriber; return the seconds from start to the last ack.

        ``batch`` selects ``StreamSub(batch=True, max_records=max_records)``; otherwise one
        message per handler call. The stream is deleted before returning.
        """
        stream = self.key(name)
        try:
            messages = asyncio.run(_encode(events))
            self._preload(stream, messages, total)
            self._client.execute_command("XGROUP", "CREATE", stream, _GROUP, "0")
            seconds, handled = asyncio.run(self._subscribe(stream, total, batch, max_records))
        finally:
            self._client.delete(stream)
        if handled != total:
            raise RuntimeError(f"FastStream handled {handled} events, {total} were stored")
        return seconds

    def _preload(self, stream: str, messages: Sequence[bytes], total: int) -> None:
        pipe = self._client.pipeline(transaction=False)
        for index in range(total):
            pipe.execute_command("XADD", stream, "*", "__data__", messages[index % len(messages)])
            if (index + 1) % PRELOAD_BATCH == 0:
                pipe.execute()
        pipe.execute()

    async def _subscribe(
        self, stream: str, total: int, batch: bool, max_records: int
    ) -> tuple[float, int]:
        from faststream.redis import RedisBroker, StreamSub

        broker = RedisBroker(self._url, logger=None)  # type: ignore[arg-type]  # None: no logging
        finished = asyncio.Event()
        handled = 0

        if batch:

            @broker.subscriber(
                stream=StreamSub(
                    stream, group=_GROUP, consumer=_CONSUMER, batch=True, max_records=max_records
                )
            )
            async def handle_batch(body: list[Listing]) -> None:
                nonlocal handled
                handled += len(body)
                if handled >= total:
                    finished.set()

        else:

            @broker.subscriber(stream=StreamSub(stream, group=_GROUP, consumer=_CONSUMER))
            async def handle_one(body: Listing) -> None:
                nonlocal handled
                handled += 1
                if handled >= total:
                    finished.set()

        started = time.perf_counter()
        await broker.start()
        try:
            await finished.wait()
            client = broker.config.connection.client
            while (await client.xpending(stream, _GROUP))["pending"]:
                await asyncio.sleep(0.0005)
            elapsed = time.perf_counter() - started
        finally:
            await broker.stop()
        return elapsed, handled

    def close(self) -> None:
        """Delete every key this object named and drop the connection."""
        if self._keys:
            self._client.delete(*self._keys)
            self._keys.clear()
        self._client.close()


async def _encode(events: Sequence[Event]) -> list[bytes]:
    """Each event's value as FastStream's publisher would put it in the ``__data__`` field."""
    from faststream.redis.parser import BinaryMessageFormatV1

    return [
        await BinaryMessageFormatV1.encode(
            message=event.value,
            reply_to=None,
            headers={"content-type": "application/json"},
            correlation_id=uuid.uuid4().hex,
        )
        for event in events
    ]
