"""Every ```python block in docs/*.md and README.md runs, so the examples never rot.

The blocks of one file run in order as one script, in a fresh interpreter inside an empty
temporary directory (so relative data directories never touch the checkout).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])


def python_blocks(path: Path) -> list[str]:
    return PYTHON_BLOCK.findall(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "doc", [d for d in DOCS if python_blocks(d)], ids=lambda d: d.relative_to(ROOT).as_posix()
)
def test_python_examples_run(doc: Path, tmp_path: Path) -> None:
    script = "\n\n".join(python_blocks(doc))
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{doc.name} examples failed:\n{result.stdout}{result.stderr}"
