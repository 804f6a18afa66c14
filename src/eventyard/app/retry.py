"""When and how soon a failed handler call is tried again: :class:`RetryPolicy`.

A policy answers three questions for the dispatcher, and only those; it keeps no state, so one
policy is shared by every partition of a subscription:

- :meth:`RetryPolicy.should_retry`: after attempt ``n`` failed with ``exc``, is there another
  attempt? Not when ``n`` reached ``max_attempts``, nor when ``exc`` is one of ``give_up_on``
  (checked first, so ``give_up_on`` carves exceptions out of ``retry_on``), nor when ``exc`` is
  none of ``retry_on``. The dispatcher then dead-letters the event.
- :meth:`RetryPolicy.delay`: how long to wait before attempt ``n + 1``. The base delay grows
  geometrically, ``initial_delay * multiplier ** (n - 1)``, capped at ``max_delay``; ``jitter``
  then draws the delay uniformly from ``[base * (1 - jitter), base]``. ``jitter=1.0`` is "full
  jitter" (anywhere from 0 to the base), smaller values are proportional jitter, ``0`` none.
  Jitter only ever shortens the delay, so ``max_delay`` is a true upper bound, and it spreads
  the retries of many consumers that failed together (a downstream outage) so they do not
  return in lockstep. The random source is passed in, a ``random.Random``, so the dispatcher
  owns one and tests seed it.
- :meth:`RetryPolicy.tier_for`: which retry topic holds an event that waits ``delay`` seconds.
  Non-blocking retries republish the event to one of a few delay topics (``tiers`` seconds,
  ascending); a consumer of tier ``i`` holds each record until it is ``tiers[i]`` old. The
  smallest tier at least as long as the delay is chosen, so an event never comes back early;
  a delay beyond the last tier uses the last tier.

``strict_order=True`` tells the dispatcher to retry in place instead: the partition waits while
the event is retried, so events of one key are never handled out of order, at the price of
holding every later event of the partition behind the failing one. With the default
``strict_order=False`` a failed event moves to a retry topic and the partition goes on.

Every field is checked when the policy is built, and a bad value raises
:class:`~eventyard.errors.ConfigError` with one line naming the field and the value, because
policies are written by users at import time, where a clear message matters most.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from dataclasses import dataclass
from typing import Any

from eventyard.errors import ConfigError

__all__ = ["RetryPolicy"]


def _number(name: str, value: Any, minimum: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < minimum
    ):
        raise ConfigError(f"RetryPolicy.{name} must be a finite number >= {minimum}, got {value!r}")


def _exceptions(name: str, value: Any) -> None:
    if not isinstance(value, tuple) or not all(
        isinstance(item, type) and issubclass(item, BaseException) for item in value
    ):
        raise ConfigError(f"RetryPolicy.{name} must be a tuple of exception classes, got {value!r}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times, after which errors, and how long apart a failed event is retried.

    ``max_attempts`` counts every call, the first included: ``max_attempts=1`` never retries.
    Delays are in seconds. See the module docstring for the meaning of each field.
    """

    max_attempts: int = 3
    initial_delay: float = 0.1
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.2
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    give_up_on: tuple[type[BaseException], ...] = ()
    strict_order: bool = False
    tiers: tuple[float, ...] = (1.0, 10.0, 60.0)

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or self.max_attempts < 1
        ):
            raise ConfigError(
                f"RetryPolicy.max_attempts must be an integer >= 1, got {self.max_attempts!r}"
            )
        _number("initial_delay", self.initial_delay, 0.0)
        _number("max_delay", self.max_delay, 0.0)
        if self.max_delay < self.initial_delay:
            raise ConfigError(
                f"RetryPolicy.max_delay ({self.max_delay!r}) must be >= initial_delay "
                f"({self.initial_delay!r})"
            )
        _number("multiplier", self.multiplier, 1.0)
        _number("jitter", self.jitter, 0.0)
        if self.jitter > 1.0:
            raise ConfigError(f"RetryPolicy.jitter must be between 0 and 1, got {self.jitter!r}")
        _exceptions("retry_on", self.retry_on)
        _exceptions("give_up_on", self.give_up_on)
        if not isinstance(self.strict_order, bool):
            raise ConfigError(f"RetryPolicy.strict_order must be a bool, got {self.strict_order!r}")
        if not isinstance(self.tiers, tuple) or not self.tiers:
            raise ConfigError(
                f"RetryPolicy.tiers must be a non-empty tuple of seconds, got {self.tiers!r}"
            )
        for tier in self.tiers:
            if (
                isinstance(tier, bool)
                or not isinstance(tier, int | float)
                or not math.isfinite(tier)
                or tier <= 0
            ):
                raise ConfigError(
                    f"RetryPolicy.tiers must hold positive finite seconds, got {self.tiers!r}"
                )
        if any(later <= earlier for earlier, later in itertools.pairwise(self.tiers)):
            raise ConfigError(f"RetryPolicy.tiers must be strictly increasing, got {self.tiers!r}")

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """Whether another attempt follows attempt ``attempt`` (from 1), which ``exc`` failed."""
        if attempt >= self.max_attempts:
            return False
        if isinstance(exc, self.give_up_on):
            return False
        return isinstance(exc, self.retry_on)

    def base_delay(self, attempt: int) -> float:
        """The delay before attempt ``attempt + 1`` without jitter: geometric, capped."""
        if attempt < 1:
            raise ValueError(f"attempts are numbered from 1, got {attempt}")
        if self.initial_delay == 0.0:
            return 0.0
        try:
            grown = self.initial_delay * self.multiplier ** (attempt - 1)
        except OverflowError:
            return float(self.max_delay)
        return float(min(grown, self.max_delay))

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after attempt ``attempt`` (from 1) failed, jitter drawn from ``rng``.

        The result lies in ``[base * (1 - jitter), base]`` where ``base`` is
        :meth:`base_delay`, so it never exceeds ``max_delay``.
        """
        base = self.base_delay(attempt)
        if self.jitter == 0.0 or base == 0.0:
            return base
        return base * (1.0 - self.jitter * rng.random())

    def tier_for(self, delay: float) -> int:
        """The index of the smallest tier >= ``delay``; the last tier for longer delays."""
        return min(bisect.bisect_left(self.tiers, delay), len(self.tiers) - 1)
