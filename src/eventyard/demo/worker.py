"""One stage of the pipeline in its own process: ``python -m eventyard.demo.worker STAGE``.

The pipeline (:mod:`eventyard.demo.pipeline`) starts one of these per stage with the
address of ``eventyard serve`` and the run's settings file (:mod:`eventyard.demo.settings`;
an alert channel added later is an ``alerts`` worker with a settings file of its own, naming
its channel and group suffix). The stage's app then runs on the Kafka transport until
SIGTERM (graceful: finish, commit, leave the group) or SIGKILL (the next worker of the stage
resumes from the last commit). Logs go to stderr, which the pipeline points at
``<work dir>/<worker name>.log``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from pathlib import Path

from eventyard.app.runner import run, serve
from eventyard.demo.settings import read_settings
from eventyard.demo.stages import STAGES, build_stage

__all__ = ["main"]


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
    run(serve(app, on_started=gc.freeze))  # as Pipeline.start does, for the same reason


if __name__ == "__main__":
    main()
