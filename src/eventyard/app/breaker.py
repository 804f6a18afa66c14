"""A circuit breaker: stop calling a handler whose downstream keeps failing, then probe it.

:class:`CircuitBreaker` has three states (:class:`BreakerState`):

- ``CLOSED``: every call is allowed. Each failure is remembered for ``window`` seconds; when
  ``failure_threshold`` failures fall within one window, the breaker opens. Successes do not
  wipe earlier failures: the count is of failures in the window, not of consecutive ones, so a
  downstream that fails every other call still trips it.
- ``OPEN``: no call is allowed for ``reset_timeout`` seconds; :meth:`CircuitBreaker.retry_after`
  says how long is left, so the dispatcher pauses the subscription instead of burning retries
  and dead-lettering events a healthy downstream would have handled. Outcomes recorded while
  open (calls allowed before it opened) are ignored.
- ``HALF_OPEN``: once ``reset_timeout`` has passed, up to ``half_open_probes`` calls are let
  through. The next recorded outcome decides: a success closes the breaker (forgetting every
  failure), a failure opens it again for another ``reset_timeout``. A probe that reports
  nothing for ``reset_timeout`` seconds (its task was cancelled) frees its place, so a lost
  probe cannot hold the breaker half-open forever.

Time comes from the injected ``clock`` (``time.monotonic`` by default), read on every call;
state changes that only time causes (open to half-open) happen when the breaker is next asked.
A breaker is owned by one subscription's dispatcher on one event loop, so it takes no locks.
"""

from __future__ import annotations

import enum
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventyard.errors import ConfigError

__all__ = ["BreakerPolicy", "BreakerState", "CircuitBreaker"]


class BreakerState(enum.Enum):
    """Where a :class:`CircuitBreaker` stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"BreakerPolicy.{name} must be an integer >= 1, got {value!r}")


def _positive_seconds(name: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(
            f"BreakerPolicy.{name} must be a positive number of seconds, got {value!r}"
        )


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a breaker opens and how it recovers; times in seconds (see the module docstring)."""

    failure_threshold: int = 5
    window: float = 30.0
    reset_timeout: float = 10.0
    half_open_probes: int = 1

    def __post_init__(self) -> None:
        _positive_int("failure_threshold", self.failure_threshold)
        _positive_seconds("window", self.window)
        _positive_seconds("reset_timeout", self.reset_timeout)
        _positive_int("half_open_probes", self.half_open_probes)


class CircuitBreaker:
    """One breaker's state; ask :meth:`allow` before each call and record its outcome."""

    __slots__ = ("_clock", "_failures", "_opened_at", "_probes", "_state", "policy")

    def __init__(
        self, policy: BreakerPolicy | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy if policy is not None else BreakerPolicy()
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures: deque[float] = deque()
        """When each failure of the current window happened (closed state only), oldest first."""
        self._opened_at = 0.0
        self._probes: deque[float] = deque()
        """When each probe still waiting for its outcome started (half-open only), oldest first."""

    @property
    def state(self) -> BreakerState:
        """The state now, after any change the passing of time made."""
        self._advance(self._clock())
        return self._state

    def allow(self) -> bool:
        """Whether a call may run now; in half-open state a ``True`` takes a probe's place."""
        now = self._clock()
        self._advance(now)
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN or len(self._probes) >= self.policy.half_open_probes:
            return False
        self._probes.append(now)
        return True

    def record_success(self) -> None:
        """A call succeeded: closes a half-open breaker; changes nothing otherwise."""
        self._advance(self._clock())
        if self._state is BreakerState.HALF_OPEN:
            self._state = BreakerState.CLOSED
            self._failures.clear()
            self._probes.clear()

    def record_failure(self) -> None:
        """A call failed: counts toward opening a closed breaker; reopens a half-open one."""
        now = self._clock()
        self._advance(now)
        if self._state is BreakerState.CLOSED:
            self._failures.append(now)
            self._forget_old_failures(now)
            if len(self._failures) >= self.policy.failure_threshold:
                self._open(now)
        elif self._state is BreakerState.HALF_OPEN:
            self._open(now)

    def retry_after(self) -> float:
        """Seconds until :meth:`allow` may next return ``True``; ``0.0`` when it would now."""
        now = self._clock()
        self._advance(now)
        if self._state is BreakerState.CLOSED:
            return 0.0
        if self._state is BreakerState.OPEN:
            return self._opened_at + self.policy.reset_timeout - now
        if len(self._probes) < self.policy.half_open_probes:
            return 0.0
        return self._probes[0] + self.policy.reset_timeout - now

    def _open(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = now
        self._failures.clear()
        self._probes.clear()

    def _forget_old_failures(self, now: float) -> None:
        horizon = now - self.policy.window
        while self._failures and self._failures[0] <= horizon:
            self._failures.popleft()

    def _advance(self, now: float) -> None:
        if self._state is BreakerState.OPEN and now >= self._opened_at + self.policy.reset_timeout:
            self._state = BreakerState.HALF_OPEN
        if self._state is BreakerState.HALF_OPEN:
            lease_end = now - self.policy.reset_timeout
            while self._probes and self._probes[0] <= lease_end:
                self._probes.popleft()
