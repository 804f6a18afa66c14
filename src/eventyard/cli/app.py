"""The root ``eventyard`` command: its sub-commands, ``--version``, and the error boundary.

:func:`main` is the console-script entry point. It runs the typer app in non-standalone mode
so that every failure (a click usage error, an ``EventyardError`` from the broker, bad input,
Ctrl-C, a bug) reaches one ``except`` clause, which prints the single ``error:`` line that
:func:`~eventyard.cli.output.describe_failure` builds and exits with its code. No traceback is
ever shown to the user.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from eventyard.cli import consume, deals, demo, dlq, groups, produce, run, serve, topics, tour
from eventyard.cli.output import describe_failure

__all__ = ["app", "main"]

app = typer.Typer(
    name="eventyard",
    help=(
        "A durable, partitioned event log and broker, run from a shell.\n\n"
        "Start with [bold]eventyard demo[/] (the deal-sourcing pipeline) or "
        "[bold]eventyard tour[/] (the broker); then create a topic, produce JSON lines into "
        "it and consume them back:\n\n"
        "$ eventyard topics create listings --partitions 3\n\n"
        "$ echo '{\"id\": 1}' | eventyard produce listings\n\n"
        "$ eventyard consume listings --from-beginning"
    ),
    rich_markup_mode="rich",
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["--help", "-h"]},
)
app.add_typer(topics.app, name="topics")
app.add_typer(groups.app, name="groups")
app.add_typer(dlq.app, name="dlq")
app.command("produce")(produce.produce)
app.command("consume")(consume.consume)
app.add_typer(demo.app, name="demo")
app.add_typer(deals.app, name="deals")
app.command("tour")(tour.tour)
app.command("serve")(serve.serve)
app.command("run")(run.run)


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import version  # here, not at the top: 50 ms per start

        typer.echo(f"eventyard {version('eventyard')}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            help="Print the eventyard version and exit.",
        ),
    ] = False,
) -> None:
    """Show the help when no command is given."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


def _log_to_stderr() -> None:
    """Show the broker's warnings (a torn tail truncated at recovery, say) as
    ``warning: ...`` lines on stderr, each distinct message once, nothing below warning."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LevelPrefixFormatter())
    handler.addFilter(_OncePerMessage())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])


class _LevelPrefixFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


class _OncePerMessage(logging.Filter):
    """Drop a message already shown: a damaged segment is reported by every reader that
    meets it, and one command should say so once."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[tuple[int, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.levelno, record.getMessage())
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``) and exit with its status."""
    _log_to_stderr()
    command = typer.main.get_command(app)
    try:
        status = command.main(
            list(argv) if argv is not None else sys.argv[1:],
            prog_name="eventyard",
            standalone_mode=False,
        )
    except (Exception, KeyboardInterrupt) as exc:
        failure = describe_failure(exc)
        print(f"error: {failure.message}", file=sys.stderr)
        sys.exit(failure.exit_code)
    sys.exit(status if isinstance(status, int) else 0)
