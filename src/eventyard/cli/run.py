"""``eventyard run MODULE:APP``: run an application's subscriptions as a service.

The app names its own transport (``App(EmbeddedTransport(".eventyard"))``, or Kafka, or
NATS), so this command only imports it, starts it and waits: SIGINT or SIGTERM shuts it
down gracefully (``eventyard.app.runner``). A line on stderr says what runs; the app's logs
go to stderr at ``--log-level``.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from eventyard.app.runner import load_app, serve
from eventyard.cli.runner import run as run_async

__all__ = ["run"]

_LEVELS = ("debug", "info", "warning", "error")


def run(
    target: Annotated[
        str, typer.Argument(help="The app to run, as MODULE:ATTRIBUTE (an App or a factory).")
    ],
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "info",
    until_idle: Annotated[
        bool,
        typer.Option(
            "--until-idle", help="Stop once everything there is to read is handled and committed."
        ),
    ] = False,
) -> None:
    """Run an app's handlers until interrupted (Ctrl-C or SIGTERM), then stop gracefully.

    On a signal every subscription stops fetching, finishes its running handlers, commits
    and leaves its group; a second signal exits at once.

    [bold]Examples[/]

    $ eventyard run myservice.main:app

    $ eventyard run myservice.main:create_app --log-level debug

    $ eventyard run myservice.main:app --until-idle
    """
    level = log_level.lower()
    if level not in _LEVELS:
        raise typer.BadParameter(f"must be one of {', '.join(_LEVELS)}", param_hint="--log-level")
    logging.basicConfig(  # a service logs every occurrence, with times: replace the CLI's
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    app = load_app(target)
    subscriptions = ", ".join(s.name for s in app.subscriptions) or "no subscriptions"

    def started() -> None:
        print(
            f"eventyard: running {target} on the {app.transport.name} transport: {subscriptions}",
            file=sys.stderr,
            flush=True,
        )

    run_async(serve(app, on_started=started, until_idle=until_idle))
