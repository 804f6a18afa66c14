"""Framing and dispatch over raw sockets against a real ``eventyard serve``."""

from __future__ import annotations

import io
import socket
import struct
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode
from kio.schema.request_header.v1.header import RequestHeader as HeaderV1
from kio.schema.request_header.v2.header import RequestHeader as HeaderV2
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i16, i32

from eventyard.protocols.kafka.connection import MAX_FRAME_BYTES

API_VERSIONS = 18
METADATA = 3


def connect(bootstrap: str) -> socket.socket:
    host, port = bootstrap.split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def encode(api_key: int, version: int, correlation_id: int, body: Any) -> bytes:
    """A framed request of ``api_key``/``version`` as a client would send it."""
    request_type = load_request_schema(api_key, version)
    buffer = io.BytesIO()
    header_fields = dict(
        request_api_key=i16(api_key),
        request_api_version=i16(version),
        correlation_id=i32(correlation_id),
        client_id="raw-test",
    )
    if request_type.__flexible__:
        entity_writer(HeaderV2)(buffer, HeaderV2(**header_fields))
    else:
        entity_writer(HeaderV1)(buffer, HeaderV1(**header_fields))
    entity_writer(request_type)(buffer, body)
    data = buffer.getvalue()
    return struct.pack(">i", len(data)) + data


def receive(sock: socket.socket) -> bytes:
    """One response frame's bytes (without its size), or b"" if the server closed."""
    prefix = read_exactly(sock, 4)
    if not prefix:
        return b""
    return read_exactly(sock, struct.unpack(">i", prefix)[0])


def read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            return data
        data += chunk
    return data


def metadata_request(correlation_id: int) -> bytes:
    return encode(METADATA, 1, correlation_id, load_request_schema(METADATA, 1)(topics=None))


def decode_metadata_v1(frame: bytes) -> tuple[int, Any]:
    """The correlation id (header v0) and the MetadataResponse v1 of ``frame``."""
    (correlation_id,) = struct.unpack_from(">i", frame)
    body, used = entity_reader(load_response_schema(METADATA, 1))(frame, 4)
    assert used + 4 == len(frame)
    return correlation_id, body


def assert_closed(sock: socket.socket) -> None:
    assert sock.recv(1) == b""


def test_pipelined_requests_are_answered_in_order(kafka_server: str) -> None:
    with connect(kafka_server) as sock:
        sock.sendall(b"".join(metadata_request(cid) for cid in (11, 12, 13)))
        answers = [decode_metadata_v1(receive(sock)) for _ in range(3)]
    assert [cid for cid, _ in answers] == [11, 12, 13]
    assert all(body.brokers[0].port == int(kafka_server.split(":")[1]) for _, body in answers)


def test_api_versions_at_an_unsupported_version_lists_what_is_served(kafka_server: str) -> None:
    with connect(kafka_server) as sock:
        sock.sendall(struct.pack(">ihhi", 10, API_VERSIONS, 99, 5) + b"\0\0")
        frame = receive(sock)
        assert struct.unpack_from(">i", frame) == (5,)
        body, _ = entity_reader(load_response_schema(API_VERSIONS, 0))(frame, 4)
        assert body.error_code == ErrorCode.unsupported_version
        served = {entry.api_key: (entry.min_version, entry.max_version) for entry in body.api_keys}
        assert served[API_VERSIONS] == (0, 3)
        assert served[METADATA] == (0, 8)
        sock.sendall(metadata_request(6))
        assert decode_metadata_v1(receive(sock))[0] == 6


def test_garbage_frame_closes_only_that_connection(kafka_server: str) -> None:
    with connect(kafka_server) as bystander, connect(kafka_server) as sock:
        sock.sendall(struct.pack(">i", 12) + struct.pack(">hhi", METADATA, 1, 1) + b"\xff" * 4)
        assert_closed(sock)
        bystander.sendall(metadata_request(2))
        assert decode_metadata_v1(receive(bystander))[0] == 2


def test_oversize_frame_closes_only_that_connection(kafka_server: str) -> None:
    with connect(kafka_server) as bystander, connect(kafka_server) as sock:
        sock.sendall(struct.pack(">i", MAX_FRAME_BYTES + 1) + struct.pack(">hhi", METADATA, 1, 1))
        assert_closed(sock)
        bystander.sendall(metadata_request(3))
        assert decode_metadata_v1(receive(bystander))[0] == 3


def test_negative_frame_size_closes_the_connection(kafka_server: str) -> None:
    with connect(kafka_server) as sock:
        sock.sendall(struct.pack(">i", -1))
        assert_closed(sock)


def test_unknown_api_key_closes_only_that_connection(kafka_server: str) -> None:
    with connect(kafka_server) as bystander, connect(kafka_server) as sock:
        sock.sendall(struct.pack(">ihhi", 10, 999, 0, 1) + b"\0\0")
        assert_closed(sock)
        bystander.sendall(metadata_request(4))
        assert decode_metadata_v1(receive(bystander))[0] == 4


def test_unsupported_version_of_another_api_closes_the_connection(kafka_server: str) -> None:
    with connect(kafka_server) as sock:
        sock.sendall(struct.pack(">ihhi", 10, METADATA, 99, 1) + b"\0\0")
        assert_closed(sock)
