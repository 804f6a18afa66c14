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
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]

__all__ = ["Machine", "describe"]


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


def describe(workdir: Path) -> Machine:
    """Describe this machine; ``workdir`` is where the scenarios write, naming the disk.

    ``load`` is the load average when the run starts: on a shared machine it tells how much
    other work competed with the run.
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
    )
