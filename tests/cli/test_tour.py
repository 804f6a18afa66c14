"""``eventyard tour``: the walk runs and its summary adds up.

The human walk is checked line by line by the ``eventyard tour`` sample in docs/cli.md
(``test_docs.py``); this module checks the machine summary and the kept data directory.
"""

from __future__ import annotations

from pathlib import Path

from tests.cli.support import Cli


def test_json_summary_is_consistent_and_the_data_dir_is_kept(cli: Cli, tmp_path: Path) -> None:
    kept = tmp_path / "tour-data"
    result = cli("tour", "--json", "--data-dir", str(kept)).ok()
    assert result.stderr == ""
    summary = result.json()
    total = summary["produced"]
    assert total == 10_000
    assert summary["consumed"] == total
    assert summary["replayed"] == total
    assert summary["after_reopen"] == {"events": total, "committed": total}
    assert summary["per_key_order"] is True
    since = summary["replayed_since"]
    assert 0 < since["events"] == since["expected"] < total
    group = summary["group"]
    assert group["lag_after_burst"] == 2_000
    assert group["lag_final"] == 0
    owned = [p for member in group["members"] for p in member["partitions"]]
    assert sorted(owned) == [0, 1, 2]
    assert all(member["partitions"] for member in group["members"])
    assert sum(member["events"] for member in group["members"]) == 8_000
    assert sum(step["events"] for step in summary["steps"] if "produce" in step["step"]) == total
    assert summary["seconds"] >= sum(step["seconds"] for step in summary["steps"]) - 1e-3

    topic = cli("topics", "describe", "listings", "--data-dir", str(kept), "--json").ok().json()
    assert topic["messages"] == total
    cli("tour", "--data-dir", str(kept)).failed("not empty")


def test_a_temporary_data_dir_is_removed(cli: Cli) -> None:
    summary = cli("tour", "--json").ok().json()
    assert summary["consumed"] == summary["produced"] == summary["replayed"]
    assert not Path(summary["data_dir"]).exists()
