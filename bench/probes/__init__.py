"""Child processes some scenarios measure from outside: a writer to crash, a broker to weigh.

Each probe module is both the child (``python -m bench.probes.NAME ...``) and the parent-side
function that starts it. They live outside ``bench.scenarios`` so that running one as a
module imports no scenario (and never itself twice).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["child_command", "child_env"]

_ROOT = Path(__file__).resolve().parent.parent.parent
"""The checkout holding the ``bench`` package, which the child must be able to import."""


def child_command(module: str, *args: object) -> list[str]:
    """The command line running ``module`` with this interpreter and ``args``."""
    return [sys.executable, "-m", module, *map(str, args)]


def child_env() -> dict[str, str]:
    """This process's environment with the checkout on ``PYTHONPATH``."""
    pythonpath = os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": pythonpath}
