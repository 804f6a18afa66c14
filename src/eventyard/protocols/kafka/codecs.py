"""The message codecs of the Kafka front: which library reads a request body and writes its answer.

Every (api key, version) is served by a handler registered with one :class:`Codec`, so a
handler receives entities of one library and returns entities of the same library; it never
sees bytes. Two libraries generated from Kafka's own JSON schemas cover every version the
front serves:

- :data:`KIO` (the default): ``kio``'s frozen dataclasses. kio ships the schemas of Kafka 4,
  which dropped the versions that carried the old message formats (Produce 0-2, Fetch 0-3,
  ListOffsets 0, OffsetCommit 0-1, OffsetFetch 0, CreateTopics 0-1, DeleteTopics 0).
- :class:`KafkaPython`: kafka-python's generated message classes (``kafka.protocol``), whose
  schemas keep those versions and their fields (``max_num_offsets``, ``commit_timestamp``...).
  A handler module registers its old versions with ``KafkaPython(RequestClass,
  ResponseClass)``.

Both codecs are sans-io and synchronous: they work on one frame's bytes. Request headers and
response headers are the same on the wire whoever reads the body, so the connection handles
them; it asks the codec only whether a version is flexible (header v2 / v1, compact fields).
A codec raises whatever its library raises on bytes that do not decode; the connection turns
any such failure into closing that connection.
"""

from __future__ import annotations

import functools
import io
from typing import Any, Final, Protocol

from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader, entity_writer

__all__ = ["KIO", "Codec", "KafkaPython"]


class Codec(Protocol):
    """Reads request bodies and writes response bodies of the versions it is registered for."""

    def flexible(self, api_key: int, api_version: int) -> bool:
        """Whether this version is flexible: request header v2 and response header v1."""

    def read_request(self, api_key: int, api_version: int, frame: bytes, offset: int) -> Any:
        """The request entity whose body starts at ``frame[offset]`` and ends the frame.

        Raises on bytes that do not decode (kio also on bytes left over after the body).
        """

    def write_response(self, api_key: int, api_version: int, answer: Any, out: io.BytesIO) -> None:
        """Write the body of the response entity ``answer`` to ``out``."""


class _Kio:
    """kio's generated entities; readers and writers are resolved once per version."""

    def flexible(self, api_key: int, api_version: int) -> bool:
        return _kio_request(api_key, api_version)[0]

    def read_request(self, api_key: int, api_version: int, frame: bytes, offset: int) -> Any:
        body, size = _kio_request(api_key, api_version)[1](frame, offset)
        if offset + size != len(frame):
            raise ValueError(f"{len(frame) - offset - size} trailing bytes after the body")
        return body

    def write_response(self, api_key: int, api_version: int, answer: Any, out: io.BytesIO) -> None:
        _kio_response(api_key, api_version)(out, answer)


@functools.cache
def _kio_request(api_key: int, api_version: int) -> tuple[bool, Any]:
    request_type = load_request_schema(api_key, api_version)
    return request_type.__flexible__, entity_reader(request_type)


@functools.cache
def _kio_response(api_key: int, api_version: int) -> Any:
    return entity_writer(load_response_schema(api_key, api_version))


KIO: Final[Codec] = _Kio()
"""The default codec: kio, for every version Kafka 4 still defines."""


class KafkaPython:
    """kafka-python's generated message classes ``request``/``response`` of one API.

    kafka-python's decoder does not report how many bytes it used (and a decoded entity
    cannot be encoded again to find out: it lacks the header state ``encode`` touches), so
    bytes left over after an old-version body are ignored rather than refused.
    """

    __slots__ = ("_request", "_response")

    def __init__(self, request: Any, response: Any) -> None:
        self._request = request
        self._response = response

    def flexible(self, api_key: int, api_version: int) -> bool:
        return bool(self._request.flexible_version_q(api_version))

    def read_request(self, api_key: int, api_version: int, frame: bytes, offset: int) -> Any:
        return self._request.decode(memoryview(frame)[offset:], version=api_version)

    def write_response(self, api_key: int, api_version: int, answer: Any, out: io.BytesIO) -> None:
        if not isinstance(answer, self._response):
            raise TypeError(f"api {api_key} answered {type(answer).__name__}, not {self._response}")
        out.write(answer.encode(version=api_version))
