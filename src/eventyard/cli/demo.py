"""``eventyard demo``: AI deal sourcing for real-estate brokers, end to end.

The demo replays a housing market (the Ames sales, 2006-2010, with simulated listing
lifecycles, or the user's own ``--listings`` export) through the pipeline of
:mod:`eventyard.demo`: comparable sales, a valuation model retrained as sales close,
scoring, buy-box matching, alerts and the deal board. By default each stage is its own
worker process against an ``eventyard serve`` the demo starts and stops;
``--single-process`` runs them all on the embedded broker in this process.

``eventyard demo report`` prints the valuation model's quality on the last year of sales,
held out by time. ``eventyard deals ...`` queries the board a run leaves in its data
directory.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from eventyard.cli.output import JsonFlag, Output, plural
from eventyard.cli.runner import run
from eventyard.errors import ConfigError

__all__ = ["app"]

app = typer.Typer(  # no help=: the callback's docstring, with its examples, is the help
    rich_markup_mode="rich",
    add_completion=False,
)

DEFAULT_DEMO_DIR = Path(".eventyard-demo")


def _missing_extra(exc: ImportError) -> ConfigError:
    return ConfigError(
        f"the demo needs its extra ({exc.name} is not installed): pip install 'eventyard[demo]'"
    )


@app.callback(invoke_without_command=True)
def demo(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Keep the run in this new or empty directory (default: a temporary one).",
        ),
    ] = None,
    single_process: Annotated[
        bool,
        typer.Option("--single-process", help="Run every stage in this process."),
    ] = False,
    speed: Annotated[
        float,
        typer.Option("--speed", min=0.0, help="Market days replayed per second (0: no pacing)."),
    ] = 40.0,
    listings: Annotated[
        Path | None,
        typer.Option("--listings", help="Your own CSV or JSON-lines export, RESO field names."),
    ] = None,
    buyboxes: Annotated[
        Path | None,
        typer.Option("--buyboxes", help="Buy-boxes YAML (default: the shipped examples)."),
    ] = None,
    alerts_file: Annotated[
        Path | None,
        typer.Option("--alerts-file", help="Append alerts as JSON lines here too."),
    ] = None,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="POST each alert as JSON to this URL.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulated lifecycles.")] = 7,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Replay only the first N sales (a quick look)."),
    ] = None,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Keep the broker up after the run (Ctrl-C stops it) for eventyard consume.",
        ),
    ] = False,
    json: JsonFlag = False,
) -> None:
    """AI deal sourcing: replay a housing market through the pipeline, with a live view.

    [bold]Examples[/]

    $ eventyard demo

    $ eventyard demo --single-process --speed 0 --json

    $ eventyard demo --listings my-mls-export.csv --buyboxes my-boxes.yaml --data-dir run1
    """
    if ctx.invoked_subcommand is not None:
        return
    if data_dir is not None and data_dir.is_dir() and any(data_dir.iterdir()):
        raise ConfigError(f"--data-dir {data_dir} is not empty: the demo needs a fresh directory")
    if listings is not None and not listings.is_file():
        raise ConfigError(f"--listings {listings}: no such file")
    if buyboxes is not None and not buyboxes.is_file():
        raise ConfigError(f"--buyboxes {buyboxes}: no such file")
    try:
        from eventyard.demo.session import DemoOptions, run_demo
    except ImportError as exc:
        raise _missing_extra(exc) from exc
    out = Output(json)
    directory = data_dir or Path(tempfile.mkdtemp(prefix="eventyard-demo-"))
    options = DemoOptions(
        data_dir=directory,
        single_process=single_process,
        speed=speed,
        seed=seed,
        listings=listings,
        buyboxes=buyboxes,
        alerts_file=alerts_file,
        webhook=webhook,
        limit=limit,
    )
    try:
        summary = run(run_demo(options, out.stderr))
        if serve:
            run(_serve_after(directory, out))
    finally:
        if data_dir is None:
            shutil.rmtree(directory, ignore_errors=True)
    if out.json_mode:
        out.json(summary.to_dict())
        return
    _print_summary(out, summary)


async def _serve_after(directory: Path, out: Output) -> None:
    from eventyard.broker import BrokerConfig
    from eventyard.cli.serve import serve_until_signal

    out.note(
        "the broker stays up on 127.0.0.1:9092 until Ctrl-C; in another terminal: "
        "eventyard consume alerts --from-beginning --broker 127.0.0.1:9092"
    )
    await serve_until_signal(directory / "broker", "127.0.0.1", 9092, None, BrokerConfig())


def _print_summary(out: Output, summary: object) -> None:
    from eventyard.demo.session import DemoSummary

    assert isinstance(summary, DemoSummary)
    out.line(
        f"[bold]eventyard demo[/]: {plural(summary.listing_events, 'listing event')} from "
        f"{summary.source}, {summary.mode}, {summary.seconds:.1f} s"
    )
    out.table(
        ["stage", "events committed"],
        sorted(summary.stages.items()),
        title="stages",
        numeric=["events committed"],
    )
    out.table(
        ["listing", "score", "list price", "estimate", "buy-boxes", "why"],
        [
            (
                d["listing_key"],
                f"{d['score']:.1f}",
                d["list_price"],
                d["estimate"],
                ", ".join(d.get("buyboxes") or ()),
                "; ".join(list(d.get("signals") or ())[:2]),
            )
            for d in summary.top_deals
        ],
        title="top deals",
        numeric=["score", "list price", "estimate"],
    )
    valuation = summary.valuation
    if valuation.get("sales"):
        out.line(
            f"valuation: median error {valuation['mdape']:.1%} over {valuation['sales']:,} "
            f"closed sales; 80% intervals held {valuation['coverage_80']:.0%} of them"
        )
    out.line(
        f"alerts sent: {summary.alerts:,}; dead letters: {summary.dead_letters:,}"
        + (
            f"; rejected input rows: {summary.rejected_records:,}"
            if summary.rejected_records
            else ""
        )
    )
    if summary.fields:
        real = sorted(k for k, v in summary.fields.items() if v == "real")
        simulated = sorted(k for k, v in summary.fields.items() if v != "real")
        out.note(f"real fields: {', '.join(real)}")
        out.note(f"simulated fields: {', '.join(simulated)}")


@app.command("report")
def report(
    seed: Annotated[int, typer.Option("--seed", help="Seed of the model.")] = 7,
    json: JsonFlag = False,
) -> None:
    """The valuation model's quality on the last year of Ames sales, held out by time.

    [bold]Examples[/]

    $ eventyard demo report

    $ eventyard demo report --seed 11 --json
    """
    try:
        from eventyard.demo.quality import quality_report
    except ImportError as exc:
        raise _missing_extra(exc) from exc
    out = Output(json)
    result = quality_report(seed=seed)
    document = result.to_dict()
    if out.json_mode:
        out.json(document)
        return
    out.table(
        ["measure", "value"], [(k, v) for k, v in document.items()], title="valuation quality"
    )
