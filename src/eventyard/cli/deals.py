"""``eventyard deals``: query the deal board a demo run left in its data directory.

The board is the pipeline's read model (``eventyard.demo.board``), a SQLite file at
``<data dir>/work/board.db`` rebuilt from the ``deals``, ``matches`` and ``alerts`` topics;
these commands only read it, so they work while a run is going on too. ``deals for`` also
reads the run's settings (``<data dir>/work/settings.json``) to tell a buy-box the run does
not have (an error) from one with no matches yet.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer

from eventyard.cli.output import JsonFlag, Output, help_without_command
from eventyard.errors import ConfigError

__all__ = ["app"]

app = typer.Typer(
    help="Query the deal board of a demo run: top deals, a buy-box's deals, a listing's history.",
    rich_markup_mode="rich",
    add_completion=False,
)
app.callback(invoke_without_command=True)(help_without_command)

BoardDir = Annotated[
    Path,
    typer.Option("--data-dir", help="The data directory of a run (eventyard demo --data-dir)."),
]
DEFAULT = Path(".eventyard-demo")


def _board(data_dir: Path) -> Any:
    path = data_dir / "work" / "board.db"
    if not path.is_file():
        raise ConfigError(
            f"no deal board at {path}: run eventyard demo --data-dir {data_dir} first"
        )
    try:
        from eventyard.demo.board import DealBoard
    except ImportError as exc:
        raise ConfigError(
            f"the demo needs its extra ({exc.name} is not installed): pip install 'eventyard[demo]'"
        ) from exc
    return DealBoard(path)


def _check_buybox(data_dir: Path, name: str) -> None:
    """``ConfigError`` if the run in ``data_dir`` has no buy-box ``name``: the board knows
    only the buy-boxes that matched something, so an empty answer alone cannot tell a
    mistyped name from a buy-box without matches yet. A run that left no settings file
    (made before the demo wrote one in both modes) is not checked."""
    from eventyard.demo.settings import SETTINGS_FILE, read_settings

    path = data_dir / "work" / SETTINGS_FILE
    if not path.is_file():
        return
    try:
        names = [box.name for box in read_settings(path).buyboxes]
    except msgspec.DecodeError as exc:
        raise ConfigError(f"the run's settings file {path} is unreadable: {exc}") from None
    if name in names:
        return
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"its buy-boxes: {', '.join(names)}"
    raise ConfigError(f"no buy-box named {name!r} in the run at {data_dir} ({hint})")


def _documents(rows: list[Any]) -> list[dict[str, Any]]:
    return [msgspec.to_builtins(row) if not isinstance(row, dict) else row for row in rows]


COLUMNS = {
    "DealRow": ("listing_key", "status", "list_price", "estimate", "score", "signals", "buyboxes"),
    "MatchRow": ("buybox", "listing_key", "list_price", "estimate", "score", "alerts", "reasons"),
    "HistoryRow": ("at", "kind", "list_price", "score", "buybox", "detail"),
}
"""The columns a table shows of each kind of board row (``--json`` has every field)."""


def _show(out: Output, rows: list[Any], title: str) -> None:
    documents = _documents(rows)
    if out.json_mode:
        out.json(documents)
        return
    if not documents:
        out.note(f"{title}: nothing yet")
        return
    wanted = COLUMNS.get(type(rows[0]).__name__)
    columns = [c for c in wanted if c in documents[0]] if wanted else list(documents[0])
    out.table(
        columns,
        [[_cell(d.get(c)) for c in columns] for d in documents],
        title=title,
        numeric=[c for c in columns if isinstance(documents[0].get(c), int | float)],
    )


def _cell(value: Any) -> Any:
    """A list field (signals, buy-boxes, reasons) as one readable cell; ``msgspec``'s
    ``to_builtins`` leaves tuple fields tuples, so both kinds are joined."""
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    return value


@app.command("top")
def top(
    n: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many deals.")] = 10,
    data_dir: BoardDir = DEFAULT,
    json: JsonFlag = False,
) -> None:
    """The best-scored deals on the board.

    [bold]Examples[/]

    $ eventyard deals top --data-dir run1

    $ eventyard deals top -n 3 --json --data-dir run1
    """
    board = _board(data_dir)
    try:
        _show(Output(json), list(board.top(n)), "top deals")
    finally:
        board.close()


@app.command("for")
def for_buybox(
    buybox: Annotated[str, typer.Argument(help="A buy-box name from the buy-boxes file.")],
    data_dir: BoardDir = DEFAULT,
    json: JsonFlag = False,
) -> None:
    """The deals a buy-box matched, best first.

    [bold]Examples[/]

    $ eventyard deals for first-time-buyers --data-dir run1
    """
    board = _board(data_dir)
    try:
        rows = list(board.for_buybox(buybox))
    finally:
        board.close()
    if not rows:
        _check_buybox(data_dir, buybox)
    _show(Output(json), rows, f"deals for {buybox}")


@app.command("history")
def history(
    listing: Annotated[str, typer.Argument(help="A ListingKey, like AMES-0042.")],
    data_dir: BoardDir = DEFAULT,
    json: JsonFlag = False,
) -> None:
    """Everything the board knows about one listing, oldest first.

    [bold]Examples[/]

    $ eventyard deals history AMES-0042 --data-dir run1
    """
    board = _board(data_dir)
    try:
        _show(Output(json), list(board.history(listing)), f"history of {listing}")
    finally:
        board.close()
