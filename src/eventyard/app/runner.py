"""Running an app as a service: ``eventyard run module:app``.

:func:`load_app` imports ``module`` (the current directory first on the path, as
``python -m`` would) and takes ``attribute``: an :class:`~eventyard.app.App`, or a function
without arguments that returns one (a factory, so that importing the module has no side
effects). :func:`serve` starts it and runs until SIGINT or SIGTERM (or, with
``until_idle``, until everything there is to read is handled), then shuts down
gracefully: every subscription stops fetching, finishes its in-flight handlers, commits and
leaves its group, and the transport closes. A second signal during the shutdown exits at
once; the events not committed then are delivered again (at-least-once).

:func:`run` runs a coroutine to completion on a fresh event loop, as ``asyncio.run`` does,
on uvloop's loop when uvloop is installed (the ``fast`` extra, part of ``demo``): every
``eventyard`` command, ``eventyard serve`` among them, and the demo's worker processes run
through it. Set ``EVENTYARD_EVENT_LOOP=asyncio`` for the standard library's loop. uvloop
spends less CPU per network round trip: a stage of the demo relaying records through
``eventyard serve`` spends about a fifth less per fetch-and-publish cycle, and a chain of
six such relays at 1,000 records a second had a p50 latency about a quarter lower
(``docs/demo.md``).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

from eventyard.app.app import App
from eventyard.errors import ConfigError

__all__ = ["EVENT_LOOP_ENV", "load_app", "run", "serve"]

T = TypeVar("T")

EVENT_LOOP_ENV: Final = "EVENTYARD_EVENT_LOOP"
"""``uvloop`` (the default when it is installed) or ``asyncio``."""

log = logging.getLogger("eventyard.app")


def run(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to completion on a fresh event loop (uvloop's when installed and not
    turned off by ``EVENTYARD_EVENT_LOOP=asyncio``; see the module docstring)."""
    try:
        factory = _loop_factory()
    except ConfigError:
        work.close()  # never to run: no "never awaited" warning on top of the error
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(work)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop constructor, or ``None`` for the standard library's loop."""
    choice = os.environ.get(EVENT_LOOP_ENV, "uvloop")
    if choice not in ("uvloop", "asyncio"):
        raise ConfigError(f"{EVENT_LOOP_ENV} must be uvloop or asyncio, not {choice!r}")
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    new_event_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return new_event_loop


def load_app(target: str) -> App:
    """The app that ``"package.module:attribute"`` names (see the module docstring)."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"expected MODULE:ATTRIBUTE (like myservice.main:app), not {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name
        if missing is not None and (
            missing == module_name or module_name.startswith(missing + ".")
        ):
            raise ConfigError(
                f"cannot import {module_name!r}: no module named {exc.name!r}"
            ) from exc
        raise
    value: object = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise ConfigError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if not isinstance(value, App) and callable(value):
        value = _call_factory(target, value)
    if not isinstance(value, App):
        raise ConfigError(f"{target} is not an eventyard App (it is {type(value).__qualname__!r})")
    return value


def _call_factory(target: str, factory: Callable[..., object]) -> object:
    """Call a factory that takes no arguments; refuse anything else with one clear line."""
    if inspect.iscoroutinefunction(factory):
        raise ConfigError(
            f"{target} is an async function; eventyard run needs an App or a plain "
            "function without arguments that returns one"
        )
    try:
        inspect.signature(factory).bind()
    except TypeError:
        raise ConfigError(
            f"{target} is not an eventyard App, nor a factory callable without arguments"
        ) from None
    except ValueError:
        pass  # no signature to read (a builtin): try the call
    return factory()


async def serve(
    app: App, *, on_started: Callable[[], None] | None = None, until_idle: bool = False
) -> None:
    """Run ``app`` until SIGINT/SIGTERM (or :meth:`App.stop`), then shut it down gracefully.

    ``until_idle`` stops it as soon as every subscription has handled and committed all
    there is to read (a batch job that drains its topics, or a step in a script).
    """
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def request_stop(signum: int) -> None:
        if stopping.is_set():
            log.warning("second %s: exiting without waiting", signal.Signals(signum).name)
            os._exit(130)
        log.info("%s: stopping gracefully", signal.Signals(signum).name)
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, request_stop, signum)
    try:
        await app.start()
        if on_started is not None:
            on_started()
        waits = {
            asyncio.ensure_future(stopping.wait()),
            asyncio.ensure_future(app.wait_stopped()),
        }
        if until_idle:
            waits.add(asyncio.ensure_future(app.wait_idle(timeout=None)))
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            task.result()
    finally:
        await app.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
