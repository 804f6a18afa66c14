"""A description of the machine a run measured, printed with the table and kept in the docs.

Figures mean little without the machine behind them: the CPU model and core count bound every
throughput, the kernel and filesystem bound every fsync, and the Python version bounds the
per-batch overhead. Everything is read from the running system; a field the system does not
expose says ``unknown`` rather than a guess.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]

__all__ = ["Machine", "cpu_speed", "describe"]


@dataclass(frozen=True)
class Machine:
    """The facts about one machine, as text ready for a table."""

    cpu: str
    cores: str
    memory: str
    kernel: str
    python: str
    disk: str
    load: str
    speed: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mount_of(path: Path) -> tuple[str, str, str]:
    """The device, mount point and filesystem type holding ``path`` (longest mount prefix)."""
    resolved = str(path.resolve())
    best = ("unknown", "/", "unknown")
    for part in psutil.disk_partitions(all=True):
        mount = part.mountpoint
        inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best[1]):
            best = (part.device, mount, part.fstype)
    return best


def _disk_kind(device: str) -> str:
    name = Path(device).name
    rotational = Path("/sys/block") / name / "queue" / "rotational"
    try:
        flag = rotational.read_text(encoding="utf-8").strip()
    except OSError:
        return "rotational flag unknown"
    return f"sysfs rotational={flag}"


SPEED_WINDOW = 0.03
"""Seconds of a thread's own CPU time :func:`cpu_speed` counts loop turns over."""


def cpu_speed() -> int:
    """Turns of a fixed pure-Python loop in :data:`SPEED_WINDOW` of this thread's own CPU
    time, the best of three windows: how much work a second of CPU does right now.

    Counted in CPU time, so waiting for a core does not lower it. What lowers it is a core
    that does less per second, as a shared host's busy spells make it (a busy SMT sibling, a
    lower clock); steal time does not show that, and neither does the load average. On the
    2-core development VM it gave 2,700-2,950 in fast spells and about 1,600 in slow ones,
    when the demo's latency benchmark (which fills both cores) nearly doubled. It also moves
    from one second to the next (1,410 to 2,400 within one idle minute), so one reading is
    a rough guide to the host's state when it was taken, not throughout a run.
    """
    best = 0
    for _ in range(3):
        turns = 0
        end = time.thread_time() + SPEED_WINDOW
        while time.thread_time() < end:
            for _ in range(1000):
                pass
            turns += 1
        best = max(best, turns)
    return best


def describe(workdir: Path) -> Machine:
    """Describe this machine; ``workdir`` is where the scenarios write, naming the disk.

    ``load`` is the load average when the run starts: on a shared machine it tells how much
    other work competed with the run; ``speed`` is :func:`cpu_speed` then, how fast the
    shared cores were.
    """
    device, mount, fstype = _mount_of(workdir)
    total = psutil.disk_usage(mount).total
    logical = os.cpu_count() or 0
    physical = psutil.cpu_count(logical=False) or logical
    return Machine(
        cpu=_cpu_model(),
        cores=f"{logical} logical ({physical} physical)",
        memory=f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        kernel=f"{platform.system()} {platform.release()}",
        python=f"{platform.python_implementation()} {sys.version.split()[0]}",
        disk=f"{device} ({fstype}, {_disk_kind(device)}, {total / 2**30:.0f} GiB) at {mount}",
        load=" / ".join(f"{value:.2f}" for value in os.getloadavg()) + " (1, 5, 15 min)",
        speed=f"{cpu_speed():,} loop turns in {SPEED_WINDOW * 1000:.0f} ms of CPU (cpu_speed)",
    )
