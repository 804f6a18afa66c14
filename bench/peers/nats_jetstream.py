"""NATS JetStream through nats-py, used the fast way a careful user would use it.

Produce: ``JetStreamContext.publish_async`` of every message in turn (nats-py's pipelined
publish: at most ``publish_async_max_pending`` acknowledgements outstanding, 4,000 by
default), then ``publish_async_completed`` waits for the last acknowledgement, so the clock
stops once the server has stored everything. Consume, the durable way: a pull consumer with
``AckPolicy.ALL`` reading ``fetch(batch)`` after ``fetch(batch)``, acknowledging the last
message of each batch (one ack covers the batch, as a Kafka offset commit does). Consume, the
fastest way: an ordered push consumer (no acks, not durable, flow-controlled by the server),
JetStream's recommended way to replay a stream in one reader. Every value is touched (its
length summed), as on eventyard's side.

Every stream is file-stored, named uniquely for the run, and deleted by
:meth:`NatsJetStream.close`.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import re
import secrets
import socket
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

from bench.peers import PeerUnavailable

__all__ = ["NatsJetStream", "connect"]


async def connect(url: str, key_prefix: str) -> tuple[NatsJetStream | None, str]:
    """The peer, or ``None`` and the reason it cannot be measured (for the peer column).

    Its streams are named after ``key_prefix`` (the run's unique prefix), with every character
    a stream name cannot hold replaced by ``_``.
    """
    run_id = re.sub(r"[^A-Za-z0-9]+", "_", key_prefix).strip("_")
    try:
        return await NatsJetStream.open(url, run_id), ""
    except PeerUnavailable as exc:
        return None, str(exc)


async def _quiet(error: Exception) -> None:
    """nats-py's error callback: errors surface as exceptions, not as log lines."""


class NatsJetStream:
    """A connection to the NATS server under test, owning the streams it creates."""

    def __init__(self, client: Any, server_version: str, run_id: str) -> None:
        self._client = client
        self._js = client.jetstream()
        self.server_version = server_version
        self.client_version = importlib.metadata.version("nats-py")
        self._run_id = run_id
        self._streams: set[str] = set()

    @classmethod
    async def open(cls, url: str, run_id: str) -> NatsJetStream:
        """Connect to ``url`` or raise :class:`PeerUnavailable` saying why not."""
        try:
            import nats
        except ImportError as exc:
            raise PeerUnavailable("nats-py is not installed (pip install nats-py)") from exc
        address = urllib.parse.urlsplit(url)
        try:
            # nats-py retries a refused first connection forever, logging each try: ask the
            # socket first, so an absent server is one clear reason.
            socket.create_connection((address.hostname, address.port or 4222), 2).close()
            client = await asyncio.wait_for(
                nats.connect(url, connect_timeout=2, allow_reconnect=False, error_cb=_quiet), 10
            )
        except Exception as exc:  # nats-py raises its own errors and OSError alike
            raise PeerUnavailable(f"NATS at {url} is unreachable ({exc})") from exc
        version = client.connected_server_version
        peer = cls(client, f"{version.major}.{version.minor}.{version.patch}", run_id)
        try:
            await peer._js.account_info()
        except Exception as exc:
            await client.close()
            raise PeerUnavailable(f"NATS at {url} has no JetStream ({exc!r})") from exc
        return peer

    async def create_stream(self, name: str) -> str:
        """A new file-stored stream unique to this run; returns its subject."""
        from nats.js.api import StorageType, StreamConfig

        stream = f"{self._run_id}_{name}_{secrets.token_hex(3)}"
        await self._js.add_stream(
            StreamConfig(name=stream, subjects=[f"{stream}.>"], storage=StorageType.FILE)
        )
        self._streams.add(stream)
        return f"{stream}.messages"

    async def produce(self, subject: str, payloads: Sequence[bytes], total: int) -> float:
        """Publish ``total`` messages (cycling ``payloads``); the seconds until all are acked."""
        count = len(payloads)
        started = time.perf_counter()
        for i in range(total):
            await self._js.publish_async(subject, payloads[i % count])
        await self._js.publish_async_completed()
        return time.perf_counter() - started

    async def stored(self, subject: str) -> int:
        """How many messages the stream of ``subject`` holds."""
        info = await self._js.stream_info(subject.rpartition(".")[0])
        return int(info.state.messages)

    async def consume_pull(self, subject: str, total: int, batch: int) -> tuple[float, int, int]:
        """Read ``total`` messages through a new pull consumer, acking each batch's last.

        Returns ``(seconds, messages, value_bytes)``.
        """
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        config = ConsumerConfig(
            ack_policy=AckPolicy.ALL, deliver_policy=DeliverPolicy.ALL, max_ack_pending=-1
        )
        subscription = await self._js.pull_subscribe(subject, config=config)
        count = value_bytes = 0
        started = time.perf_counter()
        try:
            while count < total:
                messages = await subscription.fetch(min(batch, total - count), timeout=10)
                for message in messages:
                    value_bytes += len(message.data)
                count += len(messages)
                await messages[-1].ack()
            return time.perf_counter() - started, count, value_bytes
        finally:
            await subscription.unsubscribe()

    async def consume_ordered(self, subject: str, total: int) -> tuple[float, int, int]:
        """Read ``total`` messages through an ordered push consumer (no acks)."""
        from nats.js.api import DeliverPolicy

        done = asyncio.Event()
        seen = [0, 0]

        async def received(message: Any) -> None:
            seen[0] += 1
            seen[1] += len(message.data)
            if seen[0] >= total:
                done.set()

        started = time.perf_counter()
        subscription = await self._js.subscribe(
            subject, cb=received, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
        try:
            await asyncio.wait_for(done.wait(), timeout=120)
            return time.perf_counter() - started, seen[0], seen[1]
        finally:
            await subscription.unsubscribe()

    async def close(self) -> None:
        """Delete every stream this object created and drop the connection."""
        try:
            for stream in sorted(self._streams):
                await self._js.delete_stream(stream)
            self._streams.clear()
        finally:
            await self._client.close()
