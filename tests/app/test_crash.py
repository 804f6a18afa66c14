"""A consumer process killed with SIGKILL mid-stream resumes from its last commit.

The app runs as a real ``eventyard run`` process on the embedded broker; the test kills it
while it is handling, starts it again, and checks the sink: without an idempotency store
nothing is lost (at-least-once: some events may be handled twice); with the SQLite store and
the sink written in the store's transaction, each event is in the sink exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import msgspec
import pytest

from eventyard.app import App
from eventyard.events import EventRegistry
from eventyard.transports import EmbeddedTransport

pytestmark = pytest.mark.slow

EVENTS = 3000

APP_MODULE = textwrap.dedent(
    """
    import asyncio
    import os
    import sqlite3

    import msgspec

    from eventyard.app import App, Context, SQLiteDedupeStore
    from eventyard.events import EventRegistry
    from eventyard.transports import EmbeddedTransport

    registry = EventRegistry()


    @registry.event("crash.order")
    class Order(msgspec.Struct):
        n: int


    SINK = os.environ["CRASH_SINK"]
    IDEMPOTENT = os.environ["CRASH_IDEMPOTENT"] == "1"
    with sqlite3.connect(SINK) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS sink (n INTEGER NOT NULL)")
    store = SQLiteDedupeStore(SINK) if IDEMPOTENT else None
    plain = sqlite3.connect(SINK, isolation_level=None, check_same_thread=False)
    app = App(
        EmbeddedTransport(os.environ["CRASH_DATA"]),
        registry=registry,
        source="crash-test",
        commit_interval=0.05,
    )


    @app.subscribe("orders", group="sink", idempotency=store, max_in_flight=32)
    async def sink(order: Order, ctx: Context) -> None:
        def insert(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO sink (n) VALUES (?)", (order.n,))

        if store is not None:
            await store.transact(ctx.group, ctx.event_id, insert)
        else:
            insert(plain)
        await asyncio.sleep(0.0005)
    """
)


def _publish(data_dir: Path) -> None:
    registry = EventRegistry()

    @registry.event("crash.order")
    class Order(msgspec.Struct):
        n: int

    async def main() -> None:
        app = App(EmbeddedTransport(data_dir), registry=registry, source="publisher")
        async with app:
            for start in range(0, EVENTS, 500):
                await app.publish_many(
                    "orders",
                    [Order(n) for n in range(start, start + 500)],
                    key=lambda o: str(o.n % 7),
                )

    asyncio.run(main())


def _rows(sink: Path) -> list[int]:
    if not sink.exists():
        return []
    with sqlite3.connect(sink, timeout=30) as db:
        try:
            return [n for (n,) in db.execute("SELECT n FROM sink")]
        except sqlite3.OperationalError:
            return []


def _start(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with (tmp_path / "run.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "eventyard.cli", "run", "crashapp:app", "--log-level", "info"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def _wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("idempotent", [False, True], ids=["at-least-once", "idempotent"])
def test_sigkill_mid_stream_resumes_from_the_last_commit(tmp_path: Path, idempotent: bool) -> None:
    data_dir = tmp_path / "data"
    sink = tmp_path / "sink.db"
    (tmp_path / "crashapp.py").write_text(APP_MODULE)
    _publish(data_dir)
    env = {
        **os.environ,
        "CRASH_DATA": str(data_dir),
        "CRASH_SINK": str(sink),
        "CRASH_IDEMPOTENT": "1" if idempotent else "0",
    }
    kills = 0
    for threshold in (EVENTS // 5, EVENTS // 2):
        process = _start(tmp_path, env)
        try:
            _wait_for(lambda t=threshold: len(_rows(sink)) >= t, 60, f"{threshold} rows")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        kills += 1
        assert len(set(_rows(sink))) < EVENTS, "the kill must land mid-stream"
    process = _start(tmp_path, env)
    try:
        _wait_for(lambda: len(set(_rows(sink))) == EVENTS, 60, "every event in the sink")
        time.sleep(0.3)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    log = (tmp_path / "run.log").read_text()
    assert process.returncode == 0, log
    assert "SIGTERM: stopping gracefully" in log
    rows = _rows(sink)
    assert sorted(set(rows)) == list(range(EVENTS)), "no event may be lost"
    assert kills == 2
    if idempotent:
        assert len(rows) == EVENTS, "with the idempotency store each event lands once"
    else:
        assert len(rows) > EVENTS, "without it the events handled after the last commit repeat"
