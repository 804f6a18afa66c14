"""``eventyard run MODULE:APP``: a real service process, its graceful stop, its bad targets."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from eventyard.app import App
from eventyard.events import EventRegistry
from eventyard.transports import EmbeddedTransport
from tests.cli.support import Cli

APP_MODULE = textwrap.dedent(
    """
    import os

    import msgspec

    from eventyard.app import App
    from eventyard.events import EventRegistry
    from eventyard.transports import EmbeddedTransport

    registry = EventRegistry()


    @registry.event("runtest.order")
    class Order(msgspec.Struct):
        n: int


    NOT_AN_APP = 42


    def create_app() -> App:
        app = App(
            EmbeddedTransport(os.environ.get("RUN_DATA", ".eventyard")),
            registry=registry,
            source="run-test",
            commit_interval=0.05,
            poll_timeout=0.05,
        )

        @app.subscribe("orders", group="runner")
        def handle(order: Order) -> None:
            with open(os.environ["RUN_SINK"], "a") as sink:
                sink.write(f"{order.n}\\n")

        return app


    app = create_app()
    """
)

registry = EventRegistry()


@registry.event("runtest.order")
class Order(msgspec.Struct):
    n: int


def publish(data_dir: Path, numbers: range) -> None:
    async def main() -> None:
        async with App(EmbeddedTransport(data_dir), registry=registry, source="pub") as app:
            await app.publish_many("orders", [Order(n) for n in numbers])

    asyncio.run(main())


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Service:
    """``eventyard run TARGET`` in ``cwd``, stderr in a file (so no pipe is left open)."""

    def __init__(self, target: str, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "eventyard.cli", "run", target, "--log-level", "info"],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def stderr(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        """SIGTERM, then the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def handled(sink: Path) -> list[int]:
    return [int(line) for line in sink.read_text().split()] if sink.exists() else []


def committed(cli: Cli) -> list[tuple[int, int]]:
    document = cli("groups", "describe", "runner", "--json").ok().json()
    return [(p["committed_offset"], p["end_offset"]) for p in document["partitions"]]


def test_run_handles_events_and_commits_on_sigterm(
    cli: Cli, tmp_path: Path, data_dir: Path, cli_env: dict[str, str]
) -> None:
    (tmp_path / "runapp.py").write_text(APP_MODULE)
    sink = tmp_path / "sink.txt"
    env = {**cli_env, "RUN_DATA": str(data_dir), "RUN_SINK": str(sink)}
    publish(data_dir, range(5))

    service = Service("runapp:app", tmp_path, env, tmp_path / "run1.log")
    try:
        wait_for(lambda: len(handled(sink)) == 5, "five events handled")
        assert "eventyard: running runapp:app" in service.stderr()
    finally:
        code = service.stop()
    log = service.stderr()
    assert code == 0, log
    assert "eventyard: running runapp:app on the embedded transport: runner@orders\n" in log, log
    assert "SIGTERM: stopping gracefully" in log
    assert "Traceback" not in log
    assert sorted(handled(sink)) == [0, 1, 2, 3, 4]
    assert committed(cli) == [(5, 5)], "everything handled was committed before exiting"

    publish(data_dir, range(5, 6))
    second = Service("runapp:create_app", tmp_path, env, tmp_path / "run2.log")
    try:
        wait_for(lambda: len(handled(sink)) >= 6, "the new event handled")
        time.sleep(0.2)  # room for a wrong redelivery to show up
    finally:
        code = second.stop()
    assert code == 0, second.stderr()
    assert "eventyard: running runapp:create_app" in second.stderr()
    assert handled(sink)[5:] == [5], "the second run saw only the new event"
    assert committed(cli) == [(6, 6)]


@pytest.fixture
def app_module(tmp_path: Path) -> None:
    (tmp_path / "runapp.py").write_text(APP_MODULE)


@pytest.mark.usefixtures("app_module")
@pytest.mark.parametrize(
    ("target", "fragments"),
    [
        ("nosuchmodule:app", ["cannot import 'nosuchmodule'", "no module named 'nosuchmodule'"]),
        ("runapp:missing", ["module 'runapp' has no attribute 'missing'"]),
        ("runapp", ["expected MODULE:ATTRIBUTE", "not 'runapp'"]),
        ("runapp:NOT_AN_APP", ["runapp:NOT_AN_APP is not an eventyard App (it is 'int')"]),
    ],
)
def test_a_bad_target_is_one_line(cli: Cli, target: str, fragments: list[str]) -> None:
    cli("run", target).failed(*fragments)


@pytest.mark.usefixtures("app_module")
def test_a_callable_that_is_no_factory_is_one_line(cli: Cli) -> None:
    cli("run", "runapp:Order").failed("not an eventyard App")


def test_a_bogus_log_level_is_refused(cli: Cli) -> None:
    cli("run", "runapp:app", "--log-level", "bogus").failed(
        "--log-level", "must be one of debug, info, warning, error"
    )


def test_run_has_help_with_examples(cli: Cli) -> None:
    result = cli("run", "--help").ok()
    assert "Usage: eventyard run" in result.stdout
    assert "$ eventyard run myservice.main:app" in result.stdout
    assert "--log-level" in result.stdout
