"""Helpers of the CLI tests: a finished run and the assertions every test makes on it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from eventyard.broker import Broker, TopicConfig
from eventyard.client import Producer
from eventyard.client.producer import ProducerRecord


@dataclass(frozen=True)
class Result:
    """A finished CLI run."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """The single JSON document on stdout."""
        return json.loads(self.stdout)

    def json_lines(self) -> list[Any]:
        """Every JSON line on stdout."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def ok(self) -> Result:
        """Assert success and return self, showing the output when it failed."""
        assert self.code == 0, f"{self.args} exited {self.code}:\n{self.stdout}\n{self.stderr}"
        return self

    def failed(self, *fragments: str, code: int = 2) -> str:
        """Assert a clean failure: exit ``code``, exactly one ``error:`` line on stderr that
        contains every fragment, no traceback; return that line."""
        assert self.code == code, f"{self.args} exited {self.code}: {self.stderr}"
        lines = self.stderr.splitlines()
        assert len(lines) == 1, f"expected one stderr line, got:\n{self.stderr}"
        assert lines[0].startswith("error: "), lines[0]
        assert "Traceback" not in self.stderr
        for fragment in fragments:
            assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
        return lines[0]


class Cli(Protocol):
    """The ``cli`` fixture: run ``eventyard`` with arguments, optional stdin and env."""

    def __call__(
        self, *args: str, input: str | bytes | None = None, env: Mapping[str, str] | None = None
    ) -> Result: ...


def base_env(pycache: Path) -> dict[str, str]:
    """The environment of a CLI run: no inherited ``EVENTYARD_*`` settings, the test
    interpreter's scripts first on PATH, a fixed width and no colour for rich output.

    Bytecode is cached under ``pycache`` (outside the source tree) even when the caller's
    environment forbids writing it: each run is a fresh interpreter, and compiling every
    module again would cost a quarter of each run's CPU time.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EVENTYARD_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(COLUMNS="120", NO_COLOR="1", TERM="dumb", PYTHONPYCACHEPREFIX=str(pycache))
    return env


def run_cli(
    args: tuple[str, ...], *, cwd: Path, env: Mapping[str, str], input: str | bytes | None = None
) -> Result:
    """Run ``python -m eventyard.cli`` as a subprocess and collect what it printed."""
    data = input.encode() if isinstance(input, str) else input
    completed = subprocess.run(
        [sys.executable, "-m", "eventyard.cli", *args],
        input=data if data is not None else b"",
        capture_output=True,
        cwd=cwd,
        env=dict(env),
        timeout=120,
        check=False,
    )
    return Result(
        args,
        completed.returncode,
        completed.stdout.decode("utf-8", "replace"),
        completed.stderr.decode("utf-8", "replace"),
    )


Seed = tuple[bytes | None, bytes | None] | ProducerRecord


def seed(data_dir: Path, topic: str, records: Iterable[Seed] = (), *, partitions: int = 1) -> None:
    """Create ``topic`` and produce ``records`` through the Python API, in this process.

    Setting a test up this way costs milliseconds instead of a CLI start-up per step, and
    leaves the data directory unlocked for the commands under test.
    """

    async def work() -> None:
        async with await Broker.open(data_dir) as broker:
            await broker.create_topic(topic, TopicConfig(partitions=partitions))
            async with Producer(broker) as producer:
                await producer.send_batch(topic, list(records))

    asyncio.run(work())


def json_lines(rows: Iterable[dict[str, Any]], key: str | None = None) -> list[Seed]:
    """Records whose values are the JSON of ``rows``, keyed by the ``key`` field if given."""
    return [
        (None if key is None else str(row[key]).encode(), json.dumps(row).encode()) for row in rows
    ]
