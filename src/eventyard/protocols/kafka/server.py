"""``KafkaServer``: the asyncio TCP listener that serves Kafka clients from one broker.

``start`` loads every API handler (``registry.load_all``) and listens; each accepted socket
gets its own :class:`~eventyard.protocols.kafka.connection.Connection`. ``stop`` is graceful:
it stops accepting, lets every connection finish the request it is processing (idle ones are
closed at once), waits up to ``grace_s`` for them, cancels what is left, and closes the broker
so its logs are flushed. The broker is owned by the server from ``start`` on.
"""

from __future__ import annotations

import asyncio
import contextlib

from eventyard.broker import Broker
from eventyard.protocols.kafka import registry
from eventyard.protocols.kafka.connection import Connection, Identity

__all__ = ["NODE_ID", "KafkaServer"]

NODE_ID = 0
"""The node id of the single broker this server presents."""


class KafkaServer:
    """Serve ``broker`` over the Kafka protocol on ``host:port``.

    ``advertised`` is the ``(host, port)`` clients are told to connect to in Metadata and
    FindCoordinator answers; it defaults to the bound address (with the real port when
    ``port`` is 0).
    """

    def __init__(
        self,
        broker: Broker,
        host: str,
        port: int,
        advertised: tuple[str, int] | None = None,
        *,
        grace_s: float = 10.0,
    ) -> None:
        self._broker = broker
        self._host = host
        self._port = port
        self._advertised = advertised
        self._grace_s = grace_s
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], Connection] = {}
        self._identity: Identity | None = None
        self._stopping = False

    @property
    def port(self) -> int:
        """The bound port (the kernel's pick when constructed with port 0)."""
        if self._server is None:
            raise RuntimeError("KafkaServer is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def identity(self) -> Identity:
        """The node id and advertised address handed to every handler."""
        if self._identity is None:
            raise RuntimeError("KafkaServer is not started")
        return self._identity

    async def start(self) -> None:
        """Load the handlers and start listening."""
        registry.load_all()
        self._server = await asyncio.start_server(self._accept, self._host, self._port)
        host, port = self._advertised or (self._host, self.port)
        self._identity = Identity(NODE_ID, host, port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connection = Connection(self._broker, self.identity, reader, writer)
        self._connections[task] = connection
        try:
            await connection.run()
        except asyncio.CancelledError:
            # ``stop`` cancels idle and overdue connections on purpose. Python 3.11's stream
            # server reports a cancelled callback task as an error, so end it normally then.
            if not self._stopping:
                raise
        finally:
            del self._connections[task]

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests, close connections, close the broker."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for task, connection in list(self._connections.items()):
            connection.request_stop()
            if connection.idle:
                task.cancel()
        pending = list(self._connections)
        if pending:
            _, late = await asyncio.wait(pending, timeout=self._grace_s)
            for task in late:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*late, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        await self._broker.close()
