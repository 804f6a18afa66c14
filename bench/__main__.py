"""``python -m bench``: run eventyard and its peers side by side and print the table.

Options: ``--quick`` for a smoke run of seconds, ``--json`` for machine output on stdout,
``--write-docs`` to rewrite docs/benchmarks.md, ``--only NAME`` (repeatable) for a subset,
``--check`` to exit 1 when a target is missed. The exit code is 1 when a scenario errored (or,
with ``--check``, failed its target), 0 otherwise. Progress goes to stderr so ``--json``
output stays clean.

Every run works in a fresh scratch directory (under ``--workdir`` or the system's temporary
directory) removed at the end, and under a Redis key prefix unique to the run, whose keys the
peers delete (NATS streams are named after it and deleted too).
"""

from __future__ import annotations

import argparse
import datetime
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import msgspec
from rich.console import Console

from bench.harness import (
    Outcome,
    Scenario,
    Settings,
    Verdict,
    outcome_to_dict,
    results_table,
    run_one,
)
from bench.machine import Machine, describe
from bench.report import DOCS_PATH, markdown, write_docs
from bench.scenarios import SCENARIOS

_PIPE_WIDTH = 160
"""Table width when stdout is not a terminal (a log file, ``make bench | tee``)."""


def _parser() -> argparse.ArgumentParser:
    names = [scenario.name for scenario in SCENARIOS]
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark eventyard against its peers on the same events, in one run.",
    )
    parser.add_argument("--quick", action="store_true", help="small smoke run (seconds)")
    parser.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    parser.add_argument(
        "--write-docs", action="store_true", help=f"rewrite {DOCS_PATH.name} with the results"
    )
    parser.add_argument(
        "--only", action="append", choices=names, metavar="NAME", help=f"one of {names}"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--seed", type=int, default=Settings.seed, help="event generator seed")
    parser.add_argument("--redis-url", default=Settings.redis_url, help="the Redis peer")
    parser.add_argument("--nats-url", default=Settings.nats_url, help="the NATS JetStream peer")
    parser.add_argument(
        "--workdir", type=_directory, default=None, help="existing directory for scratch files"
    )
    return parser


def _selected(only: Sequence[str] | None) -> list[Scenario]:
    if not only:
        return list(SCENARIOS)
    return [scenario for scenario in SCENARIOS if scenario.name in only]


def _json_document(
    outcomes: Sequence[Outcome], machine: Machine, settings: Settings, when: datetime.datetime
) -> bytes:
    document = {
        "date": when.isoformat(timespec="seconds"),
        "quick": settings.quick,
        "seed": settings.seed,
        "machine": machine.as_dict(),
        "scenarios": [outcome_to_dict(outcome) for outcome in outcomes],
    }
    return msgspec.json.format(msgspec.json.encode(document), indent=2)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.write_docs and args.only:
        parser.error("--write-docs records the whole table: drop --only")
    out = Console() if sys.stdout.isatty() else Console(width=_PIPE_WIDTH)
    err = Console(stderr=True)
    scenarios = _selected(args.only)
    workdir = Path(tempfile.mkdtemp(prefix="eventyard-bench-", dir=args.workdir))
    settings = Settings(
        workdir=workdir,
        quick=args.quick,
        seed=args.seed,
        redis_url=args.redis_url,
        nats_url=args.nats_url,
        key_prefix=f"eventyard-bench:{os.getpid()}:{secrets.token_hex(4)}:",
    )
    try:
        machine = describe(workdir)
        when = datetime.datetime.now(datetime.UTC)
        outcomes = _run(scenarios, settings, err)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        sys.stdout.buffer.write(_json_document(outcomes, machine, settings, when) + b"\n")
    else:
        out.print(results_table(outcomes))
        for index, outcome in enumerate(outcomes, 1):
            for note in outcome.notes:
                out.print(f"  {index}. {note}", highlight=False, markup=False)
        out.print(f"  machine: {machine.cpu}, {machine.cores}, {machine.memory}", markup=False)
    if args.write_docs:
        path = write_docs(markdown(outcomes, scenarios, machine, settings, when))
        err.print(f"wrote {path}", markup=False)
    verdicts = {outcome.verdict for outcome in outcomes}
    if Verdict.ERROR in verdicts or (args.check and Verdict.FAIL in verdicts):
        return 1
    return 0


def _run(scenarios: Sequence[Scenario], settings: Settings, err: Console) -> list[Outcome]:
    """Run each scenario in order, saying on stderr what runs and how it ended."""
    outcomes = []
    for scenario in scenarios:
        err.print(f"[bold]running[/] {scenario.name}: {scenario.title}", highlight=False)
        outcome = run_one(scenario, settings)
        result = outcome.error or outcome.verdict.value
        err.print(f"  {outcome.seconds:.1f} s, {result}", markup=False, highlight=False)
        outcomes.append(outcome)
    return outcomes


def _directory(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a directory")
    return path


if __name__ == "__main__":
    sys.exit(main())
