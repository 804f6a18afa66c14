"""load_app: what ``eventyard run MODULE:ATTRIBUTE`` imports, and its one-line mistakes."""

from __future__ import annotations

import asyncio
import gc
import importlib
import itertools
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from eventyard.app import App
from eventyard.app.runner import EVENT_LOOP_ENV, load_app, run
from eventyard.errors import ConfigError

_names = itertools.count()

MODULE = """
from eventyard.app import App
from eventyard.transports import MemoryTransport

app = App(MemoryTransport(), source="runner-test")
NOT_AN_APP = 42


class Holder:
    app = app


def create_app() -> App:
    return App(MemoryTransport(), source="factory")


def not_a_factory() -> int:
    return 7


def needs_an_argument(event: bytes) -> None:
    return None


async def async_factory() -> App:
    return App(MemoryTransport(), source="async")
"""


@pytest.fixture
def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """Write a module (a unique name) into the working directory and return its name."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # so load_app does not add it for good
    written: list[str] = []

    def write(source: str, *, package: str | None = None) -> str:
        name = f"runner_target_{next(_names)}"
        directory = tmp_path
        if package is not None:
            directory = tmp_path / package
            directory.mkdir(exist_ok=True)
            (directory / "__init__.py").write_text("")
            written.append(package)
        (directory / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        full = name if package is None else f"{package}.{name}"
        written.append(full)
        return full

    yield write
    for name in written:
        sys.modules.pop(name, None)


def test_an_app_attribute(write_module: Callable[[str], str]) -> None:
    name = write_module(MODULE)
    app = load_app(f"{name}:app")
    assert isinstance(app, App)
    assert app.source == "runner-test"
    assert load_app(f"{name}:app") is app, "the module is imported once"


def test_a_dotted_attribute(write_module: Callable[[str], str]) -> None:
    name = write_module(MODULE)
    assert load_app(f"{name}:Holder.app") is load_app(f"{name}:app")


def test_a_factory_is_called(write_module: Callable[[str], str]) -> None:
    name = write_module(MODULE)
    app = load_app(f"{name}:create_app")
    assert app.source == "factory"
    assert load_app(f"{name}:create_app") is not app, "each load makes a fresh app"


def test_a_module_inside_a_package(write_module: Callable[..., str]) -> None:
    name = write_module(MODULE, package="runner_pkg")
    assert load_app(f"{name}:app").source == "runner-test"


@pytest.mark.parametrize("target", ["module", "module:", ":app", ""])
def test_a_target_without_module_and_attribute_is_refused(target: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_app(target)
    assert str(info.value) == (
        f"expected MODULE:ATTRIBUTE (like myservice.main:app), not {target!r}"
    )


def test_a_missing_module_is_refused(write_module: Callable[[str], str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_app("runner_no_such_module:app")
    assert str(info.value) == (
        "cannot import 'runner_no_such_module': no module named 'runner_no_such_module'"
    )


def test_a_missing_submodule_names_it(write_module: Callable[..., str]) -> None:
    write_module(MODULE, package="runner_pkg2")
    with pytest.raises(ConfigError, match=r"no module named 'runner_pkg2\.absent'"):
        load_app("runner_pkg2.absent:app")


def test_a_missing_dependency_of_the_module_is_not_a_target_mistake(
    write_module: Callable[[str], str],
) -> None:
    name = write_module("import runner_dependency_that_is_missing\n")
    with pytest.raises(ModuleNotFoundError, match="runner_dependency_that_is_missing"):
        load_app(f"{name}:app")


def test_a_missing_dependency_whose_name_prefixes_the_module_is_re_raised(
    write_module: Callable[[str], str],
) -> None:
    name = write_module("import runner_target\n")
    with pytest.raises(ModuleNotFoundError):
        load_app(f"{name}:app")


def test_a_missing_attribute_is_refused(write_module: Callable[[str], str]) -> None:
    name = write_module(MODULE)
    with pytest.raises(ConfigError) as info:
        load_app(f"{name}:missing")
    assert str(info.value) == f"module {name!r} has no attribute 'missing'"
    with pytest.raises(ConfigError, match=r"has no attribute 'Holder\.nothing'"):
        load_app(f"{name}:Holder.nothing")


def test_something_else_than_an_app_is_refused(write_module: Callable[[str], str]) -> None:
    name = write_module(MODULE)
    with pytest.raises(
        ConfigError, match=rf"^{name}:NOT_AN_APP is not an eventyard App \(it is 'int'\)$"
    ):
        load_app(f"{name}:NOT_AN_APP")
    with pytest.raises(ConfigError, match=r"not_a_factory is not an eventyard App \(it is 'int'\)"):
        load_app(f"{name}:not_a_factory")


def test_a_callable_that_needs_arguments_is_refused(write_module: Callable[[str], str]) -> None:
    name = write_module(MODULE)
    with pytest.raises(ConfigError, match="not an eventyard App"):
        load_app(f"{name}:needs_an_argument")


def test_an_async_factory_leaves_no_unawaited_coroutine(
    write_module: Callable[[str], str],
) -> None:
    name = write_module(MODULE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            outcome = type(load_app(f"{name}:async_factory")).__name__
        except ConfigError:
            outcome = "refused"
        gc.collect()
    assert outcome in ("App", "refused")
    assert [str(w.message) for w in caught if w.category is RuntimeWarning] == []


async def _loop_type() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_run_uses_uvloop_when_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop")
    monkeypatch.delenv(EVENT_LOOP_ENV, raising=False)
    assert run(_loop_type()).startswith("uvloop")


def test_run_on_the_standard_loop_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EVENT_LOOP_ENV, "asyncio")
    assert run(_loop_type()).startswith("asyncio")


def test_run_refuses_an_unknown_loop_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EVENT_LOOP_ENV, "tokio")
    work = _loop_type()
    with pytest.raises(ConfigError, match="EVENTYARD_EVENT_LOOP must be uvloop or asyncio"):
        run(work)
    assert work.cr_frame is None  # closed, so never reported as never awaited
