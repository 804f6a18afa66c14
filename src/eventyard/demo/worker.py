"""One stage of the pipeline in its own process: ``python -m eventyard.demo.worker STAGE``.

The pipeline (:mod:`eventyard.demo.pipeline`) starts one of these per stage with the
address of ``eventyard serve`` and the run's settings file; the stage's app then runs on the
Kafka transport until SIGTERM (graceful: finish, commit, leave the group) or SIGKILL (the
next worker of the stage resumes from the last commit). Logs go to stderr, which the
pipeline points at ``<work dir>/<stage>.log``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import msgspec

from eventyard.app.runner import serve
from eventyard.demo.buyboxes import BuyBox
from eventyard.demo.stages import STAGES, StageSettings, build_stage

__all__ = ["main", "read_settings"]


class _SettingsDocument(msgspec.Struct):
    work_dir: str
    buyboxes: list[BuyBox]
    retrain_every: int
    min_training_sales: int
    seed: int
    alert_threshold: float
    channels: list[str]


def read_settings(path: Path) -> StageSettings:
    """The :class:`StageSettings` the pipeline wrote to ``path``."""
    document = msgspec.json.decode(path.read_bytes(), type=_SettingsDocument)
    return StageSettings(
        work_dir=Path(document.work_dir),
        buyboxes=tuple(document.buyboxes),
        retrain_every=document.retrain_every,
        min_training_sales=document.min_training_sales,
        seed=document.seed,
        alert_threshold=document.alert_threshold,
        channels=tuple(document.channels),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m eventyard.demo.worker")
    parser.add_argument("stage", choices=sorted(STAGES))
    parser.add_argument("--bootstrap", required=True, help="HOST:PORT of eventyard serve")
    parser.add_argument("--settings", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from eventyard.transports import KafkaTransport

    settings = read_settings(args.settings)
    app = build_stage(args.stage, KafkaTransport(args.bootstrap), settings)
    asyncio.run(serve(app))


if __name__ == "__main__":
    main()
