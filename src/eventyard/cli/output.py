"""What the CLI prints: rich tables for people, JSON for programs, one line per error.

Three contracts every command keeps, and the reasons for them:

- Machine output (``--json``) is exactly one JSON document on stdout (``consume`` prints one
  JSON object per line instead), encoded by msgspec, so ``| jq`` always works.
- People get rich tables on stdout and notes on stderr; progress bars appear only when stderr
  is a terminal, so logs and pipes stay clean.
- A failure prints exactly one line on stderr, ``error: <what went wrong>``, and never a
  traceback. :func:`describe_failure` is the single place that turns an exception into that
  line and the exit code: 2 for a user mistake (bad argument, unknown topic, locked data
  directory, invalid config, bad input), 1 for a runtime failure, 130 for Ctrl-C.
"""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final

import msgspec
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from eventyard.errors import (
    ConfigError,
    DataDirLockedError,
    EventyardError,
    GroupIdNotFoundError,
    InvalidConfigError,
    InvalidGroupIdError,
    InvalidPartitionsError,
    InvalidRequestError,
    InvalidTopicError,
    MessageTooLargeError,
    NonEmptyGroupError,
    OffsetOutOfRangeError,
    TopicExistsError,
    UnknownTopicError,
)

__all__ = [
    "USER_MISTAKE",
    "Failure",
    "InputError",
    "JsonFlag",
    "Output",
    "describe_failure",
    "help_without_command",
    "plural",
    "render_bytes",
    "render_value",
]

USER_MISTAKE: Final = 2
"""Exit code of a user mistake (the code click uses for usage errors)."""
RUNTIME_FAILURE: Final = 1
INTERRUPTED: Final = 130

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")
]

_USER_MISTAKES: Final[tuple[type[EventyardError], ...]] = (
    ConfigError,
    DataDirLockedError,
    GroupIdNotFoundError,
    InvalidConfigError,
    InvalidGroupIdError,
    InvalidPartitionsError,
    InvalidRequestError,
    InvalidTopicError,
    MessageTooLargeError,
    NonEmptyGroupError,
    OffsetOutOfRangeError,
    TopicExistsError,
    UnknownTopicError,
)
"""Broker refusals caused by what the user asked for; every other ``EventyardError`` is a
runtime failure (a corrupt log, a full disk) that the user cannot fix by retyping."""


class InputError(Exception):
    """Input data the CLI itself rejects: a bad line on stdin.

    Bad arguments raise :class:`ConfigError`, the tree's error for command-line arguments;
    this class covers data, which is neither a setting nor an argument.
    """


@dataclass(frozen=True, slots=True)
class Failure:
    """The one line and the exit code a failed command ends with."""

    message: str
    exit_code: int


def describe_failure(exc: BaseException) -> Failure:
    """Map any exception that escaped a command to its ``error:`` line and exit code.

    Usage errors keep click's code (2); an operating-system error (permission denied, say)
    is a runtime failure; anything else is a bug, reported as an internal error by type.
    """
    if isinstance(exc, typer.TyperException):
        message = exc.format_message()
        command_path = getattr(getattr(exc, "ctx", None), "command_path", None)
        if exc.exit_code == USER_MISTAKE and isinstance(command_path, str):
            message = f"{message} (see '{command_path} --help')"
        return Failure(_one_line(message), exc.exit_code)
    if isinstance(exc, InputError):
        return Failure(_one_line(str(exc)), USER_MISTAKE)
    if isinstance(exc, EventyardError):
        code = USER_MISTAKE if isinstance(exc, _USER_MISTAKES) else RUNTIME_FAILURE
        return Failure(_one_line(str(exc) or type(exc).__name__), code)
    if isinstance(exc, KeyboardInterrupt):
        return Failure("interrupted", INTERRUPTED)
    if isinstance(exc, OSError):
        return Failure(_one_line(str(exc)), RUNTIME_FAILURE)
    return Failure(_one_line(f"internal error: {type(exc).__name__}: {exc}"), RUNTIME_FAILURE)


def _one_line(message: str) -> str:
    return " ".join(message.split()) or "failed"


def render_bytes(data: bytes | None) -> Any:
    """A key or header value for JSON: text when it is UTF-8, else ``{"$base64": ...}``."""
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"$base64": base64.b64encode(data).decode("ascii")}


_JSON_DECODER: Final = msgspec.json.Decoder()


def render_value(data: bytes | None) -> Any:
    """A record value for JSON: the JSON it holds, else UTF-8 text, else ``{"$base64": ...}``."""
    if data is None:
        return None
    try:
        return _JSON_DECODER.decode(data)
    except msgspec.DecodeError:
        return render_bytes(data)


class Output:
    """Where one command writes: ``stdout`` for results, ``stderr`` for notes and progress."""

    def __init__(self, json_mode: bool, *, stdout: Console | None = None) -> None:
        self.json_mode = json_mode
        self.stdout = stdout if stdout is not None else Console(highlight=False)
        self.stderr = Console(stderr=True, highlight=False)
        self._encoder = msgspec.json.Encoder()

    @property
    def interactive(self) -> bool:
        """Whether progress bars make sense: human output and a terminal on stderr."""
        return not self.json_mode and self.stderr.is_terminal

    def json(self, document: object) -> None:
        """Write one JSON document (one line) to stdout."""
        self.json_lines([document])

    def json_lines(self, documents: Iterable[object]) -> bool:
        """Write each document as one compact JSON line, in one write per call.

        Returns False when the reader of stdout has gone away (``| head``): stdout is then
        pointed at the null device, so the interpreter's final flush stays quiet too.
        """
        buffer = bytearray()
        for document in documents:
            self._encoder.encode_into(document, buffer, len(buffer))
            buffer += b"\n"
        try:
            sys.stdout.buffer.write(buffer)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            return False
        return True

    def table(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[object]],
        *,
        title: str | None = None,
        numeric: Iterable[str] = (),
    ) -> None:
        """Print a table; ``numeric`` names the right-aligned columns."""
        right = set(numeric)
        table = Table(title=title, title_justify="left", title_style="bold")
        for column in columns:
            table.add_column(column, justify="right" if column in right else "left")
        for row in rows:
            table.add_row(*(_cell(value) for value in row))
        self.stdout.print(table)

    def line(self, text: str) -> None:
        """Print one line of human output (rich markup allowed)."""
        self.stdout.print(text)

    def note(self, text: str) -> None:
        """Print a hint for people on stderr; silent in JSON mode."""
        if not self.json_mode:
            self.stderr.print(text)


def help_without_command(ctx: typer.Context) -> None:
    """A command group's callback: ``eventyard topics`` alone prints the group's help."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


def plural(count: int, noun: str) -> str:
    """``1 event``, ``2 events``, ``10,000 events``."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _cell(value: object) -> Text:
    """Render one cell as plain text, so user data is never read as rich markup."""
    if value is None:
        return Text("-", style="dim")
    if isinstance(value, int) and not isinstance(value, bool):
        return Text(f"{value:,}")
    if isinstance(value, float):
        return Text(f"{value:,.3f}")
    return Text(str(value))
