"""One Kafka client connection: framing, request headers, dispatch and ordered responses.

A frame is a 4-byte big-endian size and that many bytes: the request header (v2 for flexible
request versions, v1 otherwise, as the request schema's ``__flexible__`` says) followed by the
body. Requests are processed one at a time per connection, so responses go out in request
order even when a client pipelines; this is what Kafka itself guarantees per connection.

What closes the connection (and only that connection; the server and other clients carry on):
a frame over ``MAX_FRAME_BYTES`` or with a negative size, an unknown api key, an unsupported
version of any API but ApiVersions, a frame that does not decode, and a handler that raises.
ApiVersions at an unsupported version is answered with UNSUPPORTED_VERSION and the supported
list in a v0 body, as Kafka does, so a newer client can retry at a version we serve.

Responses use header v1 for flexible response versions and v0 otherwise, except ApiVersions
responses, which always use header v0 (a client cannot know yet whether we are flexible). A
handler returning ``None`` (Produce with ``acks=0``) sends no response at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import logging
import struct
from dataclasses import dataclass
from typing import Any, Final

from kio.index import load_request_schema, load_response_schema
from kio.schema.api_versions.v0.response import ApiVersion as ApiVersionV0
from kio.schema.api_versions.v0.response import ApiVersionsResponse as ApiVersionsResponseV0
from kio.schema.errors import ErrorCode
from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2
from kio.schema.response_header.v0.header import ResponseHeader as ResponseHeaderV0
from kio.schema.response_header.v1.header import ResponseHeader as ResponseHeaderV1
from kio.serial import entity_reader, entity_writer
from kio.serial.readers import Reader
from kio.serial.writers import Writer
from kio.static.primitive import i16, i32

from eventyard.broker import Broker
from eventyard.protocols.kafka import registry

__all__ = ["MAX_FRAME_BYTES", "Connection", "Identity", "ProtocolError"]

log = logging.getLogger(__name__)

MAX_FRAME_BYTES: Final = 100 * 1024 * 1024
"""Largest request frame accepted (Kafka's ``socket.request.max.bytes`` is the same)."""

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


class Connection:
    """Serve one client's requests in order until it leaves, misbehaves or we stop."""

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
        self._busy = False
        self._stopping = False

    @property
    def idle(self) -> bool:
        """True while waiting for the next request (safe to cancel without losing work)."""
        return not self._busy

    def request_stop(self) -> None:
        """Finish the request in progress, if any, then close instead of reading another."""
        self._stopping = True

    async def run(self) -> None:
        """Read, dispatch and answer frames until EOF, a protocol error or a stop request."""
        try:
            while not self._stopping:
                frame = await self._read_frame()
                if frame is None:
                    return
                self._busy = True
                try:
                    response = await self._dispatch(frame)
                    if response is not None:
                        self._writer.write(response)
                        await self._writer.drain()
                finally:
                    self._busy = False
        except ProtocolError as exc:
            log.warning("closing Kafka connection from %s: %s", self._client_host, exc)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            # A bug (an answer that does not encode, say) costs this connection, not the server.
            log.exception("Kafka connection from %s failed", self._client_host)
        finally:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()

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

    async def _dispatch(self, frame: bytes) -> bytes | None:
        """Decode one request, run its handler and encode the framed response."""
        api_key, api_version, correlation_id = _KEY_VERSION_CORRELATION.unpack_from(frame)
        handler = registry.lookup(api_key, api_version)
        if handler is None:
            if api_key == API_VERSIONS:
                return _unsupported_api_versions(correlation_id)
            raise ProtocolError(f"api key {api_key} version {api_version} is not served")
        try:
            flexible, read_body = _request_codec(api_key, api_version)
            header, used = (_read_header_v2 if flexible else _read_header_v1)(frame, 0)
            body, size = read_body(frame, used)
        except Exception as exc:  # kio's native reader raises assorted types on bad bytes
            raise ProtocolError(f"undecodable api {api_key} v{api_version} frame: {exc}") from exc
        if used + size != len(frame):
            raise ProtocolError(f"{len(frame) - used - size} trailing bytes in an api {api_key}")
        ctx = registry.RequestContext(
            broker=self._broker,
            api_key=api_key,
            api_version=api_version,
            correlation_id=correlation_id,
            client_id=header.client_id,
            client_host=self._client_host,
            node_id=self._identity.node_id,
            advertised_host=self._identity.advertised_host,
            advertised_port=self._identity.advertised_port,
        )
        try:
            answer = await handler(ctx, body)
        except Exception as exc:
            log.exception("Kafka api %d v%d handler failed", api_key, api_version)
            raise ProtocolError(f"handler of api {api_key} failed: {exc!r}") from exc
        if answer is None:
            return None
        return encode_response(api_key, api_version, correlation_id, answer)


@functools.cache
def _request_codec(api_key: int, api_version: int) -> tuple[bool, Reader[Any]]:
    """Whether the request is flexible (header v2) and its body reader; resolved once."""
    request_type = load_request_schema(api_key, api_version)
    return request_type.__flexible__, entity_reader(request_type)


@functools.cache
def _response_codec(api_key: int, api_version: int) -> tuple[bool, Writer[Any]]:
    """Whether the response takes header v1 and its body writer; resolved once."""
    response_type = load_response_schema(api_key, api_version)
    header_v1 = response_type.__flexible__ and api_key != API_VERSIONS
    return header_v1, entity_writer(response_type)


def encode_response(api_key: int, api_version: int, correlation_id: int, answer: Any) -> bytes:
    """Frame ``answer`` (a kio response of ``api_key``/``api_version``) with its header."""
    header_v1, write_body = _response_codec(api_key, api_version)
    buffer = io.BytesIO()
    buffer.write(b"\0\0\0\0")
    if header_v1:
        _write_header_v1(buffer, ResponseHeaderV1(correlation_id=i32(correlation_id)))
    else:
        _write_header_v0(buffer, ResponseHeaderV0(correlation_id=i32(correlation_id)))
    write_body(buffer, answer)
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
    return encode_response(API_VERSIONS, 0, correlation_id, answer)
