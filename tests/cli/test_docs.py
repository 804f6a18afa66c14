"""Every shell sample in docs/cli.md runs, in document order, in one fresh directory.

Two kinds of fenced block are executed:

- ```` ```sh ````: the block runs under ``bash -euo pipefail`` and must succeed.
- ```` ```console ````: each ``$ command`` line runs under bash, and the lines shown after it
  must equal the command's output (stdout then stderr), line for line after trailing
  whitespace is removed. ``...`` inside a line matches any text (timings, timestamps); a line
  that is only ``...`` matches any number of lines. A console sample may show a failing
  command: its exit code is not checked, its output is.

Blocks share the directory, so the page reads as one session, exactly as a user would type
it. ``eventyard`` is the console script of the interpreter running the tests.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cli.md"
FENCE = re.compile(r"^```(sh|console)\n(.*?)^```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Step:
    """One command to run, where it is in the page, and the output it must print (or
    ``None`` for a ``sh`` block, which must only succeed)."""

    line: int
    command: str
    expected: list[str] | None


def parse_steps(text: str) -> list[Step]:
    """Split the page's executable blocks into steps, in order."""
    steps = []
    for match in FENCE.finditer(text):
        kind, body = match.group(1), match.group(2)
        first_line = text.count("\n", 0, match.start()) + 2
        if kind == "sh":
            steps.append(Step(first_line, body, None))
            continue
        current: Step | None = None
        for offset, line in enumerate(body.splitlines()):
            if line.startswith("$ "):
                current = Step(first_line + offset, line[2:], [])
                steps.append(current)
            elif current is not None and current.expected is not None:
                current.expected.append(line.rstrip())
    return steps


def line_pattern(line: str) -> str:
    """The regex of one expected line: ``...`` matches any text, and a run of spaces next to
    it matches any run of spaces (so a table cell shown as ``...`` fits any width)."""
    parts = line.split("...")
    pieces = []
    for i, part in enumerate(parts):
        text, lead, trail = part, "", ""
        if i > 0 and text.startswith(" "):
            text, lead = text.lstrip(" "), r"\s+"
        if i < len(parts) - 1 and text.endswith(" "):
            text, trail = text.rstrip(" "), r"\s+"
        pieces.append(lead + re.escape(text) + trail)
    return ".*".join(pieces)


def output_matches(expected: list[str], actual: list[str]) -> bool:
    """Match output lines against a sample, with ``...`` wildcards (see the module doc)."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head == "...":
        return any(output_matches(rest, actual[i:]) for i in range(len(actual) + 1))
    if not actual:
        return False
    return re.fullmatch(line_pattern(head), actual[0]) is not None and output_matches(
        rest, actual[1:]
    )


def test_parse_steps_reads_both_block_kinds() -> None:
    text = "intro\n```sh\necho hi\n```\n\n```console\n$ echo a\na\n$ echo b\n...\n```\n"
    steps = parse_steps(text)
    assert [(s.line, s.command, s.expected) for s in steps] == [
        (3, "echo hi\n", None),
        (7, "echo a", ["a"]),
        (9, "echo b", ["..."]),
    ]


def test_output_matching_wildcards() -> None:
    assert output_matches(["took ... s"], ["took 0.25 s"])
    assert not output_matches(["took ... s"], ["took 0.25 ms"])
    assert output_matches(["a", "...", "z"], ["a", "b", "c", "z"])
    assert output_matches(["a", "...", "z"], ["a", "z"])
    assert not output_matches(["a"], ["a", "extra"])
    assert output_matches(["│ x │ ...    │ y │"], ["│ x │   656 │ y │"])


@pytest.mark.slow
def test_cli_page_samples_run(tmp_path: Path, cli_env: dict[str, str]) -> None:
    steps = parse_steps(DOC.read_text(encoding="utf-8"))
    assert len(steps) >= 10, "docs/cli.md lost its samples"
    for step in steps:
        completed = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", step.command],
            cwd=tmp_path,
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = (completed.stdout + completed.stderr).rstrip("\n")
        where = f"docs/cli.md line {step.line}: {step.command.strip()}"
        if step.expected is None:
            assert completed.returncode == 0, f"{where} failed:\n{output}"
            continue
        actual = [line.rstrip() for line in output.splitlines()] if output else []
        assert output_matches(step.expected, actual), (
            f"{where}\nexpected:\n" + "\n".join(step.expected) + "\nactual:\n" + "\n".join(actual)
        )
