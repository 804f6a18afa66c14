"""The settings a worker process reads back are the ones the pipeline wrote, every field,
so a stage behaves the same in a worker as in one process (an added alert channel's
channels and group suffix included)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from eventyard.demo.buyboxes import load_buyboxes
from eventyard.demo.session import EXAMPLE_BUYBOXES
from eventyard.demo.settings import StageSettings, read_settings, write_settings


def test_every_field_travels(tmp_path: Path) -> None:
    settings = StageSettings(
        work_dir=tmp_path / "work",
        buyboxes=tuple(load_buyboxes(EXAMPLE_BUYBOXES)),
        channels=(f"late=jsonl:{tmp_path / 'late.jsonl'}", "terminal"),
        retrain_every=150,
        min_training_sales=250,
        seed=11,
        alert_threshold=0.05,
        group_suffix="-late",
    )
    assert read_settings(write_settings(settings, tmp_path / "settings.json")) == settings
    assert settings.alerts_path == tmp_path / "work" / "alerts-late.db"


def test_an_unknown_field_is_refused(tmp_path: Path) -> None:
    path = write_settings(StageSettings(work_dir=tmp_path, buyboxes=()), tmp_path / "s.json")
    document = msgspec.json.decode(path.read_bytes())
    path.write_bytes(msgspec.json.encode({**document, "speed": 3}))
    with pytest.raises(msgspec.ValidationError, match="speed"):
        read_settings(path)
