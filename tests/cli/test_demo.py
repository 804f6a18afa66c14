"""``eventyard demo`` and ``eventyard deals`` as a user runs them, on a slice of the market.

The full run (every sale, worker processes, the default speed) is what ``make demo`` does;
these tests run the same code on the first few hundred sales so they stay quick, once in
one process and once as worker processes against a real ``eventyard serve``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from eventyard.demo.buyboxes import BuyBox
from eventyard.demo.settings import SETTINGS_FILE, read_settings, write_settings
from tests.cli.support import Cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory, pycache: Path) -> tuple[Path, dict]:
    from tests.cli.support import base_env, run_cli

    root = tmp_path_factory.mktemp("demo")
    data_dir = root / "run"
    result = run_cli(
        (
            "demo",
            "--single-process",
            "--speed",
            "60",
            "--limit",
            "800",
            "--data-dir",
            str(data_dir),
            "--json",
        ),
        cwd=root,
        env=base_env(pycache),
    ).ok()
    return data_dir, result.json()


def test_single_process_summary_adds_up(demo_run: tuple[Path, dict]) -> None:
    _, summary = demo_run
    assert summary["mode"] == "single process"
    stages = summary["stages"]
    assert stages["comps"] == stages["valuation"] == summary["listing_events"] > 1_000
    assert stages["scoring"] == stages["matching"] > 0
    assert summary["alerts"] > 0
    assert summary["dead_letters"] == 0
    assert summary["valuation"]["sales"] > 0
    assert 0 < summary["valuation"]["mdape"] < 0.15
    assert summary["fields"]["ClosePrice"] == "real"
    assert summary["fields"]["ListPrice"] == "simulated"
    assert len(summary["top_deals"]) == 5
    scores = [d["score"] for d in summary["top_deals"]]
    assert scores == sorted(scores, reverse=True)


def test_deals_commands_read_the_board(cli: Cli, demo_run: tuple[Path, dict]) -> None:
    data_dir, summary = demo_run
    top = cli("deals", "top", "-n", "3", "--data-dir", str(data_dir), "--json").ok().json()
    assert [d["listing_key"] for d in top] == [d["listing_key"] for d in summary["top_deals"][:3]]
    key = top[0]["listing_key"]
    history = cli("deals", "history", key, "--data-dir", str(data_dir), "--json").ok().json()
    assert history and {row["kind"] for row in history} <= {"scored", "matched", "alert"}
    assert [row["at"] for row in history] == sorted(row["at"] for row in history)
    box = next(b for d in summary["top_deals"] for b in d["buyboxes"])
    matched = cli("deals", "for", box, "--data-dir", str(data_dir), "--json").ok().json()
    assert matched and all(row["buybox"] == box for row in matched)
    table = cli("deals", "top", "--data-dir", str(data_dir)).ok().stdout
    assert "top deals" in table and key in table
    assert "('" not in table and "()" not in table  # signals and buy-boxes joined, not reprs


def test_deals_for_a_buybox_the_run_lacks_is_an_error(
    cli: Cli, demo_run: tuple[Path, dict], tmp_path: Path
) -> None:
    data_dir, _ = demo_run
    cli("deals", "for", "first-hom", "--data-dir", str(data_dir)).failed(
        "no buy-box named 'first-hom'", "did you mean 'first-home'?"
    )
    cli("deals", "for", "zzz", "--data-dir", str(data_dir), "--json").failed(
        "its buy-boxes: first-home, rental-income, premium-homes, campus-fixer-upper"
    )
    # A buy-box of the run that matched nothing yet is an empty answer, not an error.
    settings = read_settings(data_dir / "work" / SETTINGS_FILE)
    work = tmp_path / "run" / "work"
    work.mkdir(parents=True)
    shutil.copy(data_dir / "work" / "board.db", work / "board.db")
    quiet = BuyBox(name="never-matched", broker="nobody", min_price=1, max_price=2)
    write_settings(replace(settings, buyboxes=(quiet,)), work / SETTINGS_FILE)
    empty = cli("deals", "for", "never-matched", "--data-dir", str(tmp_path / "run"))
    assert "deals for never-matched: nothing yet" in empty.ok().stderr
    assert (
        cli("deals", "for", "never-matched", "--data-dir", str(tmp_path / "run"), "--json")
        .ok()
        .json()
        == []
    )
    (work / SETTINGS_FILE).write_text("{not json")
    cli("deals", "for", "x", "--data-dir", str(tmp_path / "run")).failed(
        "settings file", "unreadable"
    )


def test_worker_processes_against_eventyard_serve(cli: Cli, tmp_path: Path) -> None:
    data_dir = tmp_path / "procs"
    summary = (
        cli("demo", "--speed", "0", "--limit", "300", "--data-dir", str(data_dir), "--json")
        .ok()
        .json()
    )
    assert summary["mode"] == "worker processes"
    assert summary["stages"]["comps"] == summary["listing_events"]
    assert summary["stages"]["board"] > 0
    for stage in ("comps", "valuation", "scoring", "matching", "alerts", "board"):
        assert (data_dir / "work" / f"{stage}.log").exists()
    lines = (data_dir / "work" / "alerts.jsonl").read_text().splitlines()
    assert len(lines) == summary["alerts"]
    assert len({json.loads(line)["AlertId"] for line in lines}) == len(lines)


def test_user_mistakes_are_one_line(cli: Cli, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "file").write_text("x")
    cli("demo", "--data-dir", str(busy)).failed("not empty")
    cli("demo", "--listings", str(tmp_path / "missing.csv")).failed("--listings", "no such file")
    boxes = tmp_path / "boxes.yaml"
    boxes.write_text("buyboxes:\n  - name: x\n    broker: y\n    min_price: 5\n    max_price: 1\n")
    cli("demo", "--buyboxes", str(boxes), "--data-dir", str(tmp_path / "fresh")).failed("min_price")
    cli("deals", "top", "--data-dir", str(tmp_path / "nowhere")).failed("no deal board")
    cli("demo", "--speed", "-1").failed("--speed")


def test_report_meets_the_quality_targets(cli: Cli) -> None:
    report = cli("demo", "report", "--json").ok().json()
    assert report["mdape"] <= 0.07
    assert 0.75 <= report["coverage_80"] <= 0.85
