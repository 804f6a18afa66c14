"""Timing, targets, ratios and the results table shared by every scenario.

A :class:`Scenario` is a named function from :class:`Settings` to a :class:`Measurement`:
eventyard's figure and the peer's, measured in the same run on the same events (or the reason
there is none); the harness adds the target the issue set and makes the :class:`Outcome`.

The harness never invents a figure: a peer that cannot be reached reports why, and its verdict
is ``no peer`` rather than a pass; a scenario that raises reports the error and its verdict is
``error``.

Throughput is measured as best of ``repeats`` runs (as :mod:`timeit` advises): on a shared
machine the fastest run is the one least disturbed by other work, and both sides of a
comparison get the same treatment.
"""

from __future__ import annotations

import enum
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.events import DEFAULT_SEED

__all__ = [
    "HEADERS",
    "Comparison",
    "Figure",
    "Measurement",
    "Outcome",
    "PeerFigure",
    "Scenario",
    "Settings",
    "Target",
    "Verdict",
    "outcome_to_dict",
    "rate",
    "results_table",
    "run_details",
    "run_one",
    "table_rows",
]


@dataclass(frozen=True)
class Settings:
    """What one benchmark run was asked for.

    ``quick`` shrinks every scenario to a smoke run of a few seconds (its figures mean little);
    ``workdir`` is a scratch directory the caller creates and removes; ``redis_url`` and
    ``nats_url`` name the Redis and NATS servers of the peers; ``key_prefix`` is unique to this
    run so the Redis keys and NATS streams it creates (and deletes) never collide with anyone
    else's.
    """

    workdir: Path
    quick: bool = False
    seed: int = DEFAULT_SEED
    redis_url: str = "redis://127.0.0.1:6379/0"
    nats_url: str = "nats://127.0.0.1:4222"
    key_prefix: str = "eventyard-bench:"

    def scale(self, full: int, quick: int) -> int:
        """Pick the full or the quick size of a workload."""
        return quick if self.quick else full


@dataclass(frozen=True)
class Figure:
    """A measured value with its unit (``events/s``, ``MiB/s``, ``s``, ``MiB``)."""

    value: float
    unit: str

    def __str__(self) -> str:
        if self.unit == "events/s" and self.value >= 10_000:
            return f"{self.value / 1000:,.0f}k {self.unit}"
        if abs(self.value) >= 100:
            return f"{self.value:,.0f} {self.unit}"
        return f"{self.value:.3g} {self.unit}"


@dataclass(frozen=True)
class PeerFigure:
    """The peer's side of a comparison: its name, and its figure or why there is none."""

    name: str
    figure: Figure | None = None
    reason: str = ""


class Comparison(enum.Enum):
    """How a target judges a figure."""

    RATIO_AT_LEAST = "ratio_at_least"
    """eventyard / peer >= threshold (throughput against a peer)."""
    AT_LEAST = "at_least"
    """figure >= threshold (an absolute throughput)."""
    BELOW = "below"
    """figure < threshold (a time or a memory growth)."""


class Verdict(enum.Enum):
    """The result column of the table."""

    PASS = "pass"
    FAIL = "FAIL"
    NO_PEER = "no peer"
    ERROR = "error"


@dataclass(frozen=True)
class Target:
    """A target from the issue: a comparison, a threshold and the threshold's unit."""

    comparison: Comparison
    threshold: float
    unit: str = ""

    def __str__(self) -> str:
        if self.comparison is Comparison.RATIO_AT_LEAST:
            if self.threshold < 1:
                return f">= {self.threshold:.0%} of peer"
            return f">= {self.threshold:g}x peer"
        sign = ">=" if self.comparison is Comparison.AT_LEAST else "<"
        return f"{sign} {Figure(self.threshold, self.unit)}"

    def judge(self, figure: Figure, peer: PeerFigure | None) -> Verdict:
        """Pass or fail ``figure``; a ratio target without a peer figure cannot be judged."""
        if self.comparison is Comparison.RATIO_AT_LEAST:
            ratio = _ratio(figure, peer)
            if ratio is None:
                return Verdict.NO_PEER
            return Verdict.PASS if ratio >= self.threshold else Verdict.FAIL
        if self.comparison is Comparison.AT_LEAST:
            return Verdict.PASS if figure.value >= self.threshold else Verdict.FAIL
        return Verdict.PASS if figure.value < self.threshold else Verdict.FAIL


def _ratio(figure: Figure | None, peer: PeerFigure | None) -> float | None:
    if figure is None or peer is None or peer.figure is None or peer.figure.value <= 0:
        return None
    return figure.value / peer.figure.value


@dataclass(frozen=True)
class Measurement:
    """What a scenario's ``run`` measured: eventyard's figure and the peer's side.

    ``notes`` say how the figure was measured (sizes, repeats, settings); ``details`` carry the
    numbers behind it (each run, each RSS sample) for ``--json``.
    """

    figure: Figure
    peer: PeerFigure | None = None
    notes: tuple[str, ...] = ()
    details: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """One scenario's result: the row of the table and the lines under it.

    ``figure`` is ``None`` only when ``error`` says why the scenario could not finish.
    """

    name: str
    title: str
    target: Target
    figure: Figure | None
    peer: PeerFigure | None = None
    notes: tuple[str, ...] = ()
    details: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ratio(self) -> float | None:
        """eventyard's figure over the peer's, when both exist."""
        return _ratio(self.figure, self.peer)

    @property
    def verdict(self) -> Verdict:
        if self.error is not None or self.figure is None:
            return Verdict.ERROR
        return self.target.judge(self.figure, self.peer)


@dataclass(frozen=True)
class Scenario:
    """A named benchmark: ``run`` measures both sides on the settings' workload.

    ``method`` explains in Markdown what is measured and how (each scenario passes its module
    docstring); the report prints it under the table.
    """

    name: str
    title: str
    target: Target
    run: Callable[[Settings], Measurement]
    method: str = ""


def rate(count: int, runs: Sequence[float]) -> Figure:
    """Events per second of the fastest of ``runs`` (seconds) that each handled ``count``."""
    return Figure(count / min(runs), "events/s")


def run_details(**sides: Sequence[float]) -> dict[str, float]:
    """Every run's seconds, keyed ``<side>_run_<n>_s``, for the JSON details."""
    return {f"{side}_run_{i}_s": t for side, runs in sides.items() for i, t in enumerate(runs)}


def run_one(scenario: Scenario, settings: Settings) -> Outcome:
    """Run one scenario; an exception becomes an ``error`` outcome.

    One broken scenario must not hide the others' figures, so the exception is caught here
    (and only here), keeping its message and the innermost frames of its traceback.
    """
    started = time.perf_counter()
    try:
        measured = scenario.run(settings)
    except Exception as exc:
        return Outcome(
            name=scenario.name,
            title=scenario.title,
            target=scenario.target,
            figure=None,
            error=f"{type(exc).__name__}: {exc}",
            notes=(traceback.format_exc(limit=-3).strip(),),
            seconds=time.perf_counter() - started,
        )
    return Outcome(
        name=scenario.name,
        title=scenario.title,
        target=scenario.target,
        figure=measured.figure,
        peer=measured.peer,
        notes=measured.notes,
        details=measured.details,
        seconds=time.perf_counter() - started,
    )


def table_rows(outcomes: Sequence[Outcome]) -> list[tuple[str, ...]]:
    """The table as text cells, shared by the terminal and the Markdown renderings."""
    rows: list[tuple[str, ...]] = []
    for index, outcome in enumerate(outcomes, 1):
        peer = outcome.peer
        ratio = outcome.ratio
        if peer is None:
            peer_name, peer_figure = "—", "—"
        elif peer.figure is None:
            peer_name, peer_figure = peer.name, peer.reason
        else:
            peer_name, peer_figure = peer.name, str(peer.figure)
        rows.append(
            (
                f"{index}. {outcome.title}",
                str(outcome.figure) if outcome.figure is not None else f"error: {outcome.error}",
                peer_name,
                peer_figure,
                f"{ratio:.2f}x" if ratio is not None else "—",
                str(outcome.target),
                outcome.verdict.value,
            )
        )
    return rows


HEADERS = ("Scenario", "eventyard", "Peer", "Peer figure", "Ratio", "Target", "Result")
"""The table's column names, in order."""

_VERDICT_STYLE = {
    Verdict.PASS: "bold green",
    Verdict.FAIL: "bold red",
    Verdict.NO_PEER: "yellow",
    Verdict.ERROR: "bold red",
}


def results_table(outcomes: Sequence[Outcome]) -> Table:
    """The rich table printed at the end of a run."""
    table = Table(title="eventyard vs peers (same events, same machine, one run)")
    for header in HEADERS:
        table.add_column(header, justify="right" if header in ("Ratio",) else "left")
    for outcome, row in zip(outcomes, table_rows(outcomes), strict=True):
        *cells, verdict = row
        table.add_row(*cells, f"[{_VERDICT_STYLE[outcome.verdict]}]{verdict}[/]")
    return table


def outcome_to_dict(outcome: Outcome) -> dict[str, Any]:
    """One outcome as plain JSON values, for ``--json``."""
    peer = outcome.peer
    return {
        "name": outcome.name,
        "title": outcome.title,
        "figure": _figure_dict(outcome.figure),
        "peer": None
        if peer is None
        else {"name": peer.name, "figure": _figure_dict(peer.figure), "reason": peer.reason},
        "ratio": outcome.ratio,
        "target": {
            "comparison": outcome.target.comparison.value,
            "threshold": outcome.target.threshold,
            "unit": outcome.target.unit,
            "text": str(outcome.target),
        },
        "verdict": outcome.verdict.value,
        "notes": list(outcome.notes),
        "details": outcome.details,
        "error": outcome.error,
        "seconds": round(outcome.seconds, 3),
    }


def _figure_dict(figure: Figure | None) -> dict[str, Any] | None:
    return None if figure is None else {"value": figure.value, "unit": figure.unit}
