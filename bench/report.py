"""The Markdown report that ``python -m bench --write-docs`` writes to docs/benchmarks.md.

The whole file is generated from one run (table, machine, date, and each scenario's method,
taken from its module docstring), so the document can never describe a measurement the code no
longer makes. It holds no ``python`` code blocks: the docs test executes those.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

from bench.harness import HEADERS, Outcome, Scenario, Settings, table_rows
from bench.machine import Machine

__all__ = ["DOCS_PATH", "markdown", "write_docs"]

DOCS_PATH = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
"""Where ``--write-docs`` writes: docs/benchmarks.md of this checkout."""

_MACHINE_LABELS = {
    "cpu": "CPU",
    "cores": "Cores",
    "memory": "RAM",
    "kernel": "Kernel",
    "python": "Python",
    "disk": "Disk (scratch directory)",
    "load": "Load average at start",
    "speed": "CPU speed at start",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return lines


def markdown(
    outcomes: Sequence[Outcome],
    scenarios: Sequence[Scenario],
    machine: Machine,
    settings: Settings,
    when: datetime.datetime,
) -> str:
    """Render the report for ``outcomes`` measured on ``machine`` at ``when``."""
    mode = "quick smoke run (figures not meaningful)" if settings.quick else "full run"
    lines = [
        "# Benchmarks",
        "",
        "This file is written by `python -m bench --write-docs` (`make bench` runs the same",
        "benchmark without writing); do not edit it by hand. Every scenario runs eventyard and",
        "its peer in one run, on this machine, on the same generated events (about 200-byte",
        f"JSON each, seed {settings.seed}).",
        "",
        f"Measured {when.strftime('%Y-%m-%d %H:%M UTC')}, {mode}.",
        "",
        "## Results",
        "",
        *_table(HEADERS, table_rows(outcomes)),
        "",
    ]
    for index, outcome in enumerate(outcomes, 1):
        if outcome.notes:
            lines.append(f"{index}. **{outcome.title}**: " + "; ".join(outcome.notes) + ".")
    lines += [
        "",
        "## Machine",
        "",
        *_table(
            ("", ""), [(label, getattr(machine, key)) for key, label in _MACHINE_LABELS.items()]
        ),
        "",
        "## How each scenario measures",
        "",
    ]
    for index, scenario in enumerate(scenarios, 1):
        lines += [f"### {index}. {scenario.title}", "", scenario.method.strip(), ""]
    lines += [
        "## Running it",
        "",
        "```sh",
        "make bench                       # the full run (a few minutes), table on the terminal",
        "python -m bench --quick          # a smoke run in seconds",
        "python -m bench --json           # machine-readable results",
        "python -m bench --write-docs     # rewrite this file",
        "python -m bench --only produce   # one scenario (repeatable)",
        "```",
        "",
    ]
    return "\n".join(lines)


def write_docs(text: str, path: Path = DOCS_PATH) -> Path:
    """Write ``text`` to ``path`` (creating its directory) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
