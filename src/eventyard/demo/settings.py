"""What the stages of one run share beyond a transport, and the file a worker reads it from.

:class:`StageSettings` is built once per run (:mod:`eventyard.demo.session`); in
``--single-process`` mode the stages get the object itself, and in processes mode each
worker process reads it back (:func:`read_settings`, ``python -m eventyard.demo.worker STAGE
--settings FILE``) from the JSON file the pipeline writes in either mode
(:func:`write_settings`, :attr:`StageSettings.settings_path`), where ``eventyard deals``
also finds the run's buy-boxes.
Every field travels, so a stage behaves the same in both modes: an alert channel added
later is an alerts stage whose settings carry its own ``channels`` and ``group_suffix``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from eventyard.demo.buyboxes import BuyBox

__all__ = ["SETTINGS_FILE", "StageSettings", "read_settings", "write_settings"]

SETTINGS_FILE: Final = "settings.json"
"""The run's settings file's name in its work directory (:attr:`StageSettings.settings_path`)."""


@dataclass(frozen=True)
class StageSettings:
    """What the stages need beyond a transport (the same in every process of one run)."""

    work_dir: Path
    buyboxes: tuple[BuyBox, ...]
    channels: tuple[str, ...] = ()
    """Alert channels: ``terminal``, ``jsonl:PATH``, ``webhook:URL``, each optionally
    named as ``NAME=...``."""
    retrain_every: int = 200
    min_training_sales: int = 300
    seed: int = 7
    alert_threshold: float = 0.03
    group_suffix: str = ""
    """Appended to the alerts stage's group (``alerts-late``): another channel's stage."""

    @property
    def board_path(self) -> Path:
        return self.work_dir / "board.db"

    @property
    def settings_path(self) -> Path:
        """The run's settings file (:func:`write_settings`), beside the board."""
        return self.work_dir / SETTINGS_FILE

    @property
    def alerts_path(self) -> Path:
        """The alerts stage's policy and dedupe file, one per group (``alerts<suffix>.db``)."""
        return self.work_dir / f"alerts{self.group_suffix}.db"


class _Document(msgspec.Struct, forbid_unknown_fields=True):
    """:class:`StageSettings` as JSON (paths as strings, tuples as lists)."""

    work_dir: str
    buyboxes: list[BuyBox]
    channels: list[str]
    retrain_every: int
    min_training_sales: int
    seed: int
    alert_threshold: float
    group_suffix: str


def write_settings(settings: StageSettings, path: Path) -> Path:
    """Write ``settings`` to ``path`` for worker processes; returns ``path``."""
    document = _Document(
        work_dir=str(settings.work_dir),
        buyboxes=list(settings.buyboxes),
        channels=list(settings.channels),
        retrain_every=settings.retrain_every,
        min_training_sales=settings.min_training_sales,
        seed=settings.seed,
        alert_threshold=settings.alert_threshold,
        group_suffix=settings.group_suffix,
    )
    path.write_bytes(msgspec.json.encode(document))
    return path


def read_settings(path: Path) -> StageSettings:
    """The :class:`StageSettings` :func:`write_settings` wrote to ``path``."""
    document = msgspec.json.decode(path.read_bytes(), type=_Document)
    return StageSettings(
        work_dir=Path(document.work_dir),
        buyboxes=tuple(document.buyboxes),
        channels=tuple(document.channels),
        retrain_every=document.retrain_every,
        min_training_sales=document.min_training_sales,
        seed=document.seed,
        alert_threshold=document.alert_threshold,
        group_suffix=document.group_suffix,
    )
