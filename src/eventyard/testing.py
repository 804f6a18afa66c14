"""A harness for testing an app's handlers: publish, wait for handling, read what came out.

No patching: the harness swaps the app's transport (the one seam an app has) for a fresh
one, starts the app, and offers the three verbs a test needs::

    async with AppHarness(app) as harness:                 # memory transport
        await harness.publish("listings", ListingCreated(...), key="L1")
        await harness.settle()                             # every handler done, committed
        assert [e.type for e in await harness.read("deals")] == ["deal.matched"]
        assert harness.stats("matcher").handled == 1

``AppHarness(app, transport="embedded")`` runs the same test on the durable in-process
broker in a temporary directory, so one test body covers both; any other
:class:`~eventyard.transports.Transport` instance may be passed too. The app's own
transport is put back when the harness exits.
"""

from __future__ import annotations

import itertools
import tempfile
from types import TracebackType
from typing import Any, Literal, Self

from eventyard.app import App, SubscriptionStats
from eventyard.app.dlq import read_available
from eventyard.errors import ConfigError
from eventyard.events import Envelope, decode
from eventyard.transports import EmbeddedTransport, MemoryTransport, Message, Transport

__all__ = ["AppHarness"]

_readers = itertools.count()


class AppHarness:
    """Runs ``app`` on a test transport (``"memory"``, ``"embedded"`` or an instance)."""

    def __init__(
        self,
        app: App,
        transport: Literal["memory", "embedded"] | Transport = "memory",
        *,
        partitions: int = 1,
        timeout: float = 10.0,
    ) -> None:
        if not isinstance(app, App):
            raise ConfigError(f"AppHarness needs an eventyard App, not {type(app).__qualname__}")
        self.app = app
        self.timeout = timeout
        self._choice = transport
        self._partitions = partitions
        self._original = app.transport
        self._poll = app.poll_timeout
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def _make_transport(self) -> Transport:
        choice = self._choice
        if isinstance(choice, Transport):
            return choice
        if choice == "memory":
            return MemoryTransport(partitions=self._partitions)
        if choice == "embedded":
            self._tmp = tempfile.TemporaryDirectory(prefix="eventyard-test-")
            return EmbeddedTransport(self._tmp.name, partitions=self._partitions)
        raise ConfigError(f"transport must be 'memory', 'embedded' or a Transport, not {choice!r}")

    async def __aenter__(self) -> Self:
        self.app.transport = self._make_transport()
        self._poll = self.app.poll_timeout
        self.app.poll_timeout = min(self._poll, 0.02)  # settle() waits for one empty fetch
        await self.app.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await self.app.stop()
        finally:
            self.app.transport = self._original
            self.app.poll_timeout = self._poll
            if self._tmp is not None:
                self._tmp.cleanup()

    @property
    def transport(self) -> Transport:
        return self.app.transport

    async def publish(self, topic: str, event: Any, *, key: str | bytes | None = None) -> Envelope:
        """Publish ``event`` through the app (as the app itself would)."""
        return await self.app.publish(topic, event, key=key)

    async def settle(self) -> None:
        """Wait until every subscription has handled and committed everything published."""
        await self.app.wait_idle(self.timeout)

    async def messages(self, topic: str) -> list[Message]:
        """Every record of ``topic`` from the start, read by a throwaway group."""
        receiver = self.transport.receiver([topic], f"eventyard-harness-{next(_readers)}")
        await self.transport.ensure_topic(topic)
        async with receiver:
            return await read_available(receiver)

    async def read(self, topic: str) -> list[Envelope]:
        """The envelopes of every CloudEvent on ``topic``, in partition and offset order."""
        envelopes = []
        for message in await self.messages(topic):
            envelope = decode(message.value, message.headers, message.key)
            if envelope is not None:
                envelopes.append(envelope)
        return envelopes

    def stats(self, group: str, topic: str | None = None) -> SubscriptionStats:
        return self.app.stats(group, topic)
