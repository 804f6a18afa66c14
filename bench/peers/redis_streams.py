"""Redis Streams through redis-py, used the fast way a careful user would use it.

Produce: one pipeline per batch of ``XADD stream * k KEY v VALUE`` commands, sent with
``execute_command`` (the plain ``xadd`` helper builds a dict per call and costs about a third
more client time), no transaction, one round trip per batch. Consume: a consumer group read
with ``XREADGROUP COUNT n`` and the previous batch's ``XACK`` pipelined with the next read, so
each batch costs one round trip; every value is touched (its length summed), as on eventyard's
side. redis-py parses replies with hiredis when it is installed; :func:`client_description`
says which parser ran, since that changes the figure by half.

Every key lives under the run's unique prefix and :meth:`RedisStreams.close` deletes them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from bench.events import Event
from bench.harness import Measurement, PeerFigure, rate, run_details
from bench.peers import PeerUnavailable

__all__ = ["RedisStreams", "client_description", "connect"]


def client_description() -> str:
    """redis-py's version and reply parser, for the notes under the table."""
    import redis
    from redis.utils import HIREDIS_AVAILABLE

    parser = "hiredis parser" if HIREDIS_AVAILABLE else "pure-Python parser (no hiredis)"
    return f"redis-py {redis.__version__}, {parser}"


def connect(url: str, key_prefix: str) -> tuple[RedisStreams | None, str]:
    """The peer, or ``None`` and the reason it cannot be measured (for the peer column)."""
    try:
        return RedisStreams(url, key_prefix), ""
    except PeerUnavailable as exc:
        return None, str(exc)


class RedisStreams:
    """A connection to the Redis server under test, owning the keys it creates."""

    def __init__(self, url: str, key_prefix: str) -> None:
        """Connect to ``url`` or raise :class:`PeerUnavailable` saying why not."""
        try:
            import redis
        except ImportError as exc:
            raise PeerUnavailable("redis-py is not installed (pip install redis)") from exc
        self._client: Any = redis.Redis.from_url(url, socket_timeout=30)
        try:
            info = self._client.info("server")
        except (redis.RedisError, OSError) as exc:
            raise PeerUnavailable(f"Redis at {url} is unreachable ({exc})") from exc
        self.server_version: str = str(info.get("redis_version", "?"))
        self._prefix = key_prefix
        self._keys: set[str] = set()

    def key(self, name: str) -> str:
        """The full key for ``name`` under this run's prefix; deleted by :meth:`close`."""
        full = f"{self._prefix}{name}"
        self._keys.add(full)
        return full

    def produce(self, stream: str, batches: Iterable[Sequence[Event]]) -> float:
        """Append every batch with one pipelined round trip each; return the seconds taken."""
        pipe = self._client.pipeline(transaction=False)
        started = time.perf_counter()
        for batch in batches:
            for event in batch:
                pipe.execute_command("XADD", stream, "*", "k", event.key, "v", event.value)
            pipe.execute()
        return time.perf_counter() - started

    def consume(self, stream: str, group: str, count: int) -> tuple[float, int, int]:
        """Read the whole stream through a new consumer group, acknowledging every entry.

        Returns ``(seconds, entries, value_bytes)``; the byte total proves every value was
        touched.
        """
        self._client.execute_command("XGROUP", "CREATE", stream, group, "0")
        pipe = self._client.pipeline(transaction=False)
        entries = value_bytes = 0
        pending: list[bytes] = []
        started = time.perf_counter()
        while True:
            if pending:
                pipe.execute_command("XACK", stream, group, *pending)
            pipe.execute_command(
                "XREADGROUP", "GROUP", group, "bench", "COUNT", count, "STREAMS", stream, ">"
            )
            reply = pipe.execute()[-1]
            if not reply:
                break
            batch = reply[0][1]
            pending = [entry_id for entry_id, _ in batch]
            for _, fields in batch:
                value_bytes += len(fields[b"v"])
            entries += len(batch)
        return time.perf_counter() - started, entries, value_bytes

    def length(self, stream: str) -> int:
        """The number of entries in ``stream`` (``XLEN``)."""
        return int(self._client.xlen(stream))

    def delete(self, key: str) -> None:
        """Delete one key now (between repeats), keeping the server's memory small."""
        self._client.delete(key)

    def close(self) -> None:
        """Delete every key this object named and drop the connection."""
        if self._keys:
            self._client.delete(*self._keys)
            self._keys.clear()
        self._client.close()


def versus_redis(
    peer: str,
    total: int,
    note: str,
    redis: RedisStreams | None,
    unavailable: str,
    eventyard_runs: Sequence[float],
    redis_runs: Sequence[float],
) -> Measurement:
    """The table row of a scenario that ran ``total`` events through eventyard and Redis.

    The best run of each side gives its figure; a peer that could not be reached keeps its
    reason instead of a figure.
    """
    notes = [note]
    if redis is not None:
        notes.append(f"Redis {redis.server_version}, {client_description()}")
    return Measurement(
        figure=rate(total, eventyard_runs),
        peer=PeerFigure(peer, rate(total, redis_runs) if redis_runs else None, unavailable),
        notes=tuple(notes),
        details=run_details(eventyard=eventyard_runs, redis=redis_runs),
    )
