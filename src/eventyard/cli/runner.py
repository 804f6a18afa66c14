"""Open the embedded broker for one command and run its asyncio code.

Every data command is a short-lived process: it takes the data directory's exclusive lock by
opening the broker, does its work inside one :func:`run` (:func:`eventyard.app.runner.run`,
re-exported: uvloop's loop when installed), and closes the broker (which flushes the logs)
before the process exits, even when the work fails.

Commands that only read or change existing data refuse a data directory that does not
exist, rather than quietly creating an empty one wherever the user happens to stand; only
``topics create`` and ``demo`` create it. Topics are never auto-created by the CLI: producing
to a misspelt topic is a user mistake, not a new topic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Final

import typer

from eventyard.app.runner import run
from eventyard.broker import Broker, BrokerConfig
from eventyard.broker.groups import GroupConfig
from eventyard.errors import ConfigError
from eventyard.storage.lock import LOCK_NAME

__all__ = ["COMMAND_CONFIG", "DEFAULT_DATA_DIR", "DataDir", "open_broker", "run"]

DEFAULT_DATA_DIR: Final = Path(".eventyard")

COMMAND_CONFIG: Final = BrokerConfig(
    auto_create_topics=False, groups=GroupConfig(initial_rebalance_delay_ms=0)
)
"""The broker a command opens: a misspelt topic is an error rather than a new topic, and a
group's first join does not wait for more members, since while a command holds the data
directory's lock its own consumer is the only member there can be."""

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="EVENTYARD_DATA_DIR",
        show_envvar=True,
        help="Data directory of the embedded broker (locked while the command runs).",
    ),
]


@asynccontextmanager
async def open_broker(
    data_dir: Path, *, create: bool = False, config: BrokerConfig | None = None
) -> AsyncIterator[Broker]:
    """Open the broker on ``data_dir`` for the duration of the block, then close it.

    ``create`` allows a missing directory to be created; otherwise a missing directory is a
    :class:`ConfigError`. A directory with files but without the lock file every broker
    leaves behind is refused too, so a mistyped ``--data-dir`` (or ``EVENTYARD_DATA_DIR``)
    never litters a project or home directory with broker files. ``config`` defaults to
    :data:`COMMAND_CONFIG`.
    """
    if data_dir.exists() and not data_dir.is_dir():
        raise ConfigError(f"--data-dir {data_dir} is not a directory")
    if not create and not data_dir.is_dir():
        raise ConfigError(
            f"no data directory at {data_dir}: create a topic first "
            "(eventyard topics create NAME) or pass --data-dir"
        )
    if data_dir.is_dir() and not (data_dir / LOCK_NAME).exists() and any(data_dir.iterdir()):
        raise ConfigError(
            f"{data_dir} holds other files and no eventyard data: "
            "pass --data-dir with a new or empty directory"
        )
    broker = await Broker.open(data_dir, config or COMMAND_CONFIG)
    try:
        yield broker
    finally:
        await broker.close()
