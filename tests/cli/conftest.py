"""Fixtures running the real ``eventyard`` CLI as a subprocess on a temporary data dir."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.cli.support import Cli, Result, base_env, run_cli


@pytest.fixture(scope="session")
def pycache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One bytecode cache shared by every CLI subprocess of the session."""
    return tmp_path_factory.mktemp("pycache")


@pytest.fixture
def cli_env(pycache: Path) -> dict[str, str]:
    """The environment every CLI subprocess of a test gets (see ``support.base_env``)."""
    return base_env(pycache)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The data directory the ``cli`` fixture points ``EVENTYARD_DATA_DIR`` at."""
    return tmp_path / "data"


@pytest.fixture
def cli(tmp_path: Path, data_dir: Path, cli_env: dict[str, str]) -> Cli:
    """``cli("topics", "list", input=...)`` runs ``python -m eventyard.cli`` in ``tmp_path``
    with ``EVENTYARD_DATA_DIR`` pointing at ``data_dir``."""

    def run(
        *args: str, input: str | bytes | None = None, env: Mapping[str, str] | None = None
    ) -> Result:
        full_env = {**cli_env, "EVENTYARD_DATA_DIR": str(data_dir), **(env or {})}
        return run_cli(args, cwd=tmp_path, env=full_env, input=input)

    return run
