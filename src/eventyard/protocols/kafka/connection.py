"""One Kafka client connection: framing, request headers, dispatch and ordered responses.

A frame is a 4-byte big-endian size and that many bytes: the request header (v2 for flexible
request versions, v1 otherwise, as the registered codec says) followed by the body, which
the codec of the handler registered for that (api key, version) decodes (see ``codecs``).

Pipelining. Requests are read, decoded and started one at a time, in arrival order, and
most run to their answer before the next one starts (so a Fetch long-poll or a JoinGroup
wait holds the requests behind it, as on a Kafka broker). A handler registered as
``pipelined`` (Produce) is called in place and returns its answer when it has it at once
(appends that need no durability wait, as under interval durability: no task, no loop turn),
or an awaitable, which runs in a task until it ``detach``es, once its work is done and it
only waits (for the group-commit fsync): the connection then reads and starts the next
request while it waits. Appends therefore still happen in request order (an idempotent
producer's sequences), yet a client with several Produce requests in flight (librdkafka's
``max.in.flight``) no longer waits one fsync per request in turn. Answers are written
strictly in request order, as Kafka guarantees per connection: an answer ready while none is
waiting is written by the reader itself (most are: a loop turn less per request), any other
queues for the writer behind the ones before it. At most ``MAX_PENDING`` requests are
unanswered at once; the connection stops reading until the oldest is answered (backpressure
through TCP).

What closes the connection (and only that connection; the server and other clients carry on):
a frame over ``MAX_FRAME_BYTES`` or with a negative size, an unknown api key, an unsupported
version of any API but ApiVersions, a frame that does not decode, and a handler that raises.
The answers to the requests before such a frame are still written first. ApiVersions at an
unsupported version is answered with UNSUPPORTED_VERSION and the supported list in a v0 body,
as Kafka does, so a newer client can retry at a version we serve.

Responses use header v1 for flexible response versions and v0 otherwise, except ApiVersions
responses, which always use header v0 (a client cannot know yet whether we are flexible). A
handler returning ``None`` (Produce with ``acks=0``) sends no response at all.

Stopping: ``request_stop`` lets the requests already read finish and be answered, reads no
more (a request only partly received is dropped) and then closes; ``idle`` says when there
is nothing to finish, so the server may simply cancel the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import logging
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from kio.schema.api_versions.v0.response import ApiVersion as ApiVersionV0
from kio.schema.api_versions.v0.response import ApiVersionsResponse as ApiVersionsResponseV0
from kio.schema.errors import ErrorCode
from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2
from kio.schema.response_header.v0.header import ResponseHeader as ResponseHeaderV0
from kio.schema.response_header.v1.header import ResponseHeader as ResponseHeaderV1
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i16, i32

from eventyard.broker import Broker
from eventyard.protocols.kafka import registry
from eventyard.protocols.kafka.codecs import KIO, Codec

__all__ = ["MAX_FRAME_BYTES", "MAX_PENDING", "Connection", "Identity", "ProtocolError"]

log = logging.getLogger(__name__)

MAX_FRAME_BYTES: Final = 100 * 1024 * 1024
"""Largest request frame accepted (Kafka's ``socket.request.max.bytes`` is the same)."""

MAX_PENDING: Final = 32
"""Requests read but not yet answered, per connection, before reading stops.

Clients keep at most a handful in flight (librdkafka's and the Java client's
``max.in.flight`` default to 5); the bound only stops a client that never reads its answers
from growing the server's memory.
"""

API_VERSIONS: Final = 18

_SIZE = struct.Struct(">i")
_KEY_VERSION_CORRELATION = struct.Struct(">hhi")
_read_header_v1 = entity_reader(RequestHeaderV1)
_read_header_v2 = entity_reader(RequestHeaderV2)
_write_header_v0 = entity_writer(ResponseHeaderV0)
_write_header_v1 = entity_writer(ResponseHeaderV1)


class ProtocolError(Exception):
    """A frame this connection cannot serve; the connection is closed."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who this broker says it is in every request context."""

    node_id: int
    advertised_host: str
    advertised_port: int


@dataclass(frozen=True, slots=True)
class _Closing:
    """The reader's last entry: no more requests, and why (``None``: EOF or a stop)."""

    error: Exception | None = None


_Answer: TypeAlias = "bytes | asyncio.Task[bytes | None] | None"
"""A started request's framed answer: written now, none at all, or when its task finishes."""


class Connection:
    """Serve one client's requests until it leaves, misbehaves or we stop (module docstring)."""

    def __init__(
        self,
        broker: Broker,
        identity: Identity,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self._broker = broker
        self._identity = identity
        self._reader = reader
        self._writer = writer
        peer = writer.get_extra_info("peername")
        self._client_host = str(peer[0]) if isinstance(peer, tuple) else ""
        self._answers: asyncio.Queue[_Answer | _Closing] = asyncio.Queue()
        self._slots = asyncio.Semaphore(MAX_PENDING)
        self._unanswered = 0
        self._between_requests = True
        self._stopping = False
        self._reading: asyncio.Task[None] | None = None

    @property
    def idle(self) -> bool:
        """True while waiting for the next request with every answer written (safe to cancel)."""
        return self._between_requests and self._unanswered == 0

    def request_stop(self) -> None:
        """Answer the requests already read, read no more, then close."""
        self._stopping = True
        if self._between_requests and self._reading is not None:
            self._reading.cancel()

    async def run(self) -> None:
        """Read, dispatch and answer frames until EOF, a protocol error or a stop request."""
        self._reading = asyncio.create_task(self._read_requests())
        try:
            await self._write_answers()
        except ProtocolError as exc:
            log.warning("closing Kafka connection from %s: %s", self._client_host, exc)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            # A bug (an answer that does not encode, say) costs this connection, not the server.
            log.exception("Kafka connection from %s failed", self._client_host)
        finally:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
            while not self._answers.empty():
                entry = self._answers.get_nowait()
                if not isinstance(entry, asyncio.Task):
                    continue
                if entry.done() and not entry.cancelled():
                    entry.exception()  # already logged by ``_answer``; nobody awaits it now
                else:
                    entry.cancel()
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()

    async def _write_answers(self) -> None:
        """Write every answer in request order until the reader's closing entry."""
        while True:
            entry = await self._answers.get()
            if isinstance(entry, _Closing):
                if entry.error is not None:
                    raise entry.error
                return
            await self._write(await entry if isinstance(entry, asyncio.Task) else entry)
            self._unanswered -= 1

    async def _read_requests(self) -> None:
        """Read and start requests in order, queueing their answers; end with ``_Closing``."""
        closing = _Closing()
        try:
            while not self._stopping:
                await self._slots.acquire()
                frame = await self._read_frame()
                if frame is None:
                    return
                self._between_requests = False
                try:
                    answer = await self._start(frame)
                    if self._unanswered or isinstance(answer, asyncio.Task):
                        self._unanswered += 1
                        self._answers.put_nowait(answer)
                    else:
                        await self._write(answer)
                finally:
                    self._between_requests = True
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception as exc:
            closing = _Closing(exc)
        finally:
            self._answers.put_nowait(closing)

    async def _write(self, answer: bytes | None) -> None:
        """Write one framed answer (``None``: none) and free its request's slot: the writer's
        next one, or, straight from the reader, one ready while no earlier one waits."""
        if answer is not None:
            self._writer.write(answer)
            await self._writer.drain()
        self._slots.release()

    async def _read_frame(self) -> bytes | None:
        """The next frame's bytes, or ``None`` at a clean EOF between frames."""
        try:
            prefix = await self._reader.readexactly(_SIZE.size)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise ProtocolError("connection closed inside a frame size") from None
            return None
        (size,) = _SIZE.unpack(prefix)
        if size < _KEY_VERSION_CORRELATION.size or size > MAX_FRAME_BYTES:
            raise ProtocolError(f"frame size {size} outside 8..{MAX_FRAME_BYTES}")
        return await self._reader.readexactly(size)

    async def _start(self, frame: bytes) -> _Answer:
        """Decode one request and run its handler to its answer, or until it detaches."""
        api_key, api_version, correlation_id = _KEY_VERSION_CORRELATION.unpack_from(frame)
        route = registry.route(api_key, api_version)
        if route is None:
            if api_key == API_VERSIONS:
                return _unsupported_api_versions(correlation_id)
            raise ProtocolError(f"api key {api_key} version {api_version} is not served")
        try:
            flexible = route.codec.flexible(api_key, api_version)
            header, used = (_read_header_v2 if flexible else _read_header_v1)(frame, 0)
            body = route.codec.read_request(api_key, api_version, frame, used)
        except Exception as exc:  # the codecs' readers raise assorted types on bad bytes
            raise ProtocolError(f"undecodable api {api_key} v{api_version} frame: {exc}") from exc
        if not route.pipelined:
            ctx = self._context(api_key, api_version, correlation_id, header.client_id)
            return await _answered(route, ctx, route.handler(ctx, body))
        detached: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def detach() -> None:
            if not detached.done():
                detached.set_result(None)

        ctx = self._context(api_key, api_version, correlation_id, header.client_id, detach)
        try:
            answer = route.handler(ctx, body)
        except Exception as exc:
            raise _failed(ctx, exc) from exc
        if not inspect.isawaitable(answer):
            return _framed(route, ctx, answer)
        task = asyncio.create_task(_answered(route, ctx, answer))
        task.add_done_callback(lambda _: detach())
        try:
            await detached
        except asyncio.CancelledError:
            task.cancel()
            raise
        # Finished already (a topic created first, then nothing to wait for): its answer is
        # ready, so it need not queue for the writer.
        return task.result() if task.done() else task

    def _context(
        self,
        api_key: int,
        api_version: int,
        correlation_id: int,
        client_id: str | None,
        *detach: Callable[[], None],
    ) -> registry.RequestContext:
        """The handler's context (``detach``: a pipelined request's), built positionally:
        it is made for every request."""
        identity = self._identity
        return registry.RequestContext(
            self._broker,
            api_key,
            api_version,
            correlation_id,
            client_id,
            self._client_host,
            identity.node_id,
            identity.advertised_host,
            identity.advertised_port,
            *detach,
        )


async def _answered(
    route: registry.Route, ctx: registry.RequestContext, pending: Awaitable[Any]
) -> bytes | None:
    """Await a handler's answer and frame it (``None``: no response)."""
    try:
        answer = await pending
    except Exception as exc:
        raise _failed(ctx, exc) from exc
    return _framed(route, ctx, answer)


def _framed(route: registry.Route, ctx: registry.RequestContext, answer: Any) -> bytes | None:
    """Frame a handler's answer (``None``: no response)."""
    if answer is None:
        return None
    return encode_response(route.codec, ctx.api_key, ctx.api_version, ctx.correlation_id, answer)


def _failed(ctx: registry.RequestContext, exc: Exception) -> ProtocolError:
    """Log a handler's failure; the error that closes the connection."""
    log.exception("Kafka api %d v%d handler failed", ctx.api_key, ctx.api_version)
    return ProtocolError(f"handler of api {ctx.api_key} failed: {exc!r}")


def encode_response(
    codec: Codec, api_key: int, api_version: int, correlation_id: int, answer: Any
) -> bytes:
    """Frame ``answer`` (a response of ``api_key``/``api_version`` in ``codec``'s library)."""
    buffer = io.BytesIO()
    buffer.write(b"\0\0\0\0")
    if api_key != API_VERSIONS and codec.flexible(api_key, api_version):
        _write_header_v1(buffer, ResponseHeaderV1(correlation_id=i32(correlation_id)))
    else:
        _write_header_v0(buffer, ResponseHeaderV0(correlation_id=i32(correlation_id)))
    codec.write_response(api_key, api_version, answer, buffer)
    data = buffer.getbuffer()
    _SIZE.pack_into(data, 0, len(data) - _SIZE.size)
    return bytes(data)


def _unsupported_api_versions(correlation_id: int) -> bytes:
    """UNSUPPORTED_VERSION with the supported list, in an ApiVersions v0 body."""
    answer = ApiVersionsResponseV0(
        error_code=ErrorCode.unsupported_version,
        api_keys=tuple(
            ApiVersionV0(api_key=i16(key), min_version=i16(low), max_version=i16(high))
            for key, (low, high) in registry.supported().items()
        ),
    )
    return encode_response(KIO, API_VERSIONS, 0, correlation_id, answer)
