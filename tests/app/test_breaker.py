"""CircuitBreaker: opening on failures in a window, probing after the reset timeout."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from eventyard.app.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from eventyard.errors import ConfigError


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(**settings: Any) -> tuple[CircuitBreaker, FakeClock]:
    clock = FakeClock()
    return CircuitBreaker(BreakerPolicy(**settings), clock=clock), clock


def test_a_new_breaker_is_closed_and_allows_every_call() -> None:
    breaker, _ = make()
    assert breaker.state is BreakerState.CLOSED
    assert all(breaker.allow() for _ in range(100))
    assert breaker.retry_after() == 0.0
    assert CircuitBreaker().policy == BreakerPolicy()


def test_threshold_failures_within_the_window_open_it() -> None:
    breaker, clock = make(failure_threshold=3, window=10.0, reset_timeout=5.0)
    for _ in range(2):
        breaker.record_failure()
        clock.advance(4.0)
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.retry_after() == 5.0


def test_failures_older_than_the_window_are_forgotten() -> None:
    breaker, clock = make(failure_threshold=3, window=10.0)
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(10.0)
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_successes_do_not_wipe_failures_in_the_window() -> None:
    breaker, _ = make(failure_threshold=3)
    for _ in range(3):
        breaker.record_failure()
        breaker.record_success()
    assert breaker.state is BreakerState.OPEN


def test_after_the_reset_timeout_one_probe_goes_through() -> None:
    breaker, clock = make(failure_threshold=1, reset_timeout=5.0)
    breaker.record_failure()
    clock.advance(3.0)
    assert breaker.retry_after() == 2.0
    clock.advance(2.0)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.retry_after() == 0.0
    assert breaker.allow()
    assert not breaker.allow()
    assert breaker.retry_after() == 5.0


def test_a_probe_success_closes_and_forgets_failures() -> None:
    breaker, clock = make(failure_threshold=2, reset_timeout=5.0)
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(5.0)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_a_probe_failure_reopens_for_another_reset_timeout() -> None:
    breaker, clock = make(failure_threshold=1, reset_timeout=5.0)
    breaker.record_failure()
    clock.advance(6.0)
    assert breaker.allow()
    clock.advance(1.0)
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_after() == 5.0


def test_several_probes_may_run_when_configured() -> None:
    breaker, clock = make(failure_threshold=1, reset_timeout=1.0, half_open_probes=3)
    breaker.record_failure()
    clock.advance(1.0)
    assert [breaker.allow() for _ in range(4)] == [True, True, True, False]


def test_outcomes_recorded_while_open_are_ignored() -> None:
    breaker, clock = make(failure_threshold=1, reset_timeout=5.0)
    breaker.record_failure()
    clock.advance(1.0)
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_after() == 4.0


def test_a_lost_probe_frees_its_place_after_the_reset_timeout() -> None:
    breaker, clock = make(failure_threshold=1, reset_timeout=5.0)
    breaker.record_failure()
    clock.advance(5.0)
    assert breaker.allow()
    clock.advance(4.0)
    assert not breaker.allow()
    assert breaker.retry_after() == 1.0
    clock.advance(1.0)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("failure_threshold", 0),
        ("failure_threshold", 1.5),
        ("failure_threshold", True),
        ("window", 0),
        ("window", float("inf")),
        ("reset_timeout", -1.0),
        ("reset_timeout", "10"),
        ("half_open_probes", 0),
    ],
)
def test_bad_settings_raise_config_errors_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=rf"^BreakerPolicy\.{field} must be"):
        BreakerPolicy(**{field: value})


class Model:
    """The breaker's rules written out plainly: every failure kept, counts recomputed."""

    def __init__(self, policy: BreakerPolicy) -> None:
        self.policy = policy
        self.state = "closed"
        self.failures: list[float] = []
        self.opened_at = 0.0
        self.probes: list[float] = []

    def tick(self, now: float) -> None:
        if self.state == "open" and now - self.opened_at >= self.policy.reset_timeout:
            self.state = "half_open"
            self.probes = []
        if self.state == "half_open":
            self.probes = [t for t in self.probes if t > now - self.policy.reset_timeout]

    def open(self, now: float) -> None:
        self.state, self.opened_at, self.failures, self.probes = "open", now, [], []

    def allow(self, now: float) -> bool:
        self.tick(now)
        if self.state == "closed":
            return True
        if self.state == "half_open" and len(self.probes) < self.policy.half_open_probes:
            self.probes.append(now)
            return True
        return False

    def success(self, now: float) -> None:
        self.tick(now)
        if self.state == "half_open":
            self.state, self.failures, self.probes = "closed", [], []

    def failure(self, now: float) -> None:
        self.tick(now)
        if self.state == "closed":
            self.failures.append(now)
            recent = [t for t in self.failures if t > now - self.policy.window]
            if len(recent) >= self.policy.failure_threshold:
                self.open(now)
        elif self.state == "half_open":
            self.open(now)

    def retry_after(self, now: float) -> float:
        self.tick(now)
        if self.state == "open":
            return self.opened_at + self.policy.reset_timeout - now
        if self.state == "half_open" and len(self.probes) >= self.policy.half_open_probes:
            return min(self.probes) + self.policy.reset_timeout - now
        return 0.0


class BreakerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(0.0)
        self.breaker: CircuitBreaker | None = None
        self.model: Model | None = None

    @precondition(lambda self: self.breaker is None)
    @rule(
        threshold=st.integers(1, 4),
        window=st.sampled_from([1.0, 5.0, 30.0]),
        reset=st.sampled_from([0.5, 2.0, 10.0]),
        probes=st.integers(1, 3),
    )
    def build(self, threshold: int, window: float, reset: float, probes: int) -> None:
        policy = BreakerPolicy(threshold, window, reset, probes)
        self.breaker = CircuitBreaker(policy, clock=self.clock)
        self.model = Model(policy)

    @precondition(lambda self: self.breaker is not None)
    @rule(seconds=st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 31.0]))
    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: self.breaker is not None)
    @rule()
    def allow(self) -> None:
        assert self.breaker is not None and self.model is not None
        assert self.breaker.allow() == self.model.allow(self.clock.now)

    @precondition(lambda self: self.breaker is not None)
    @rule()
    def succeed(self) -> None:
        assert self.breaker is not None and self.model is not None
        self.breaker.record_success()
        self.model.success(self.clock.now)

    @precondition(lambda self: self.breaker is not None)
    @rule()
    def fail(self) -> None:
        assert self.breaker is not None and self.model is not None
        self.breaker.record_failure()
        self.model.failure(self.clock.now)

    @invariant()
    def agrees_with_the_model(self) -> None:
        if self.breaker is None or self.model is None:
            return
        now = self.clock.now
        self.model.tick(now)
        assert self.breaker.state.value == self.model.state
        assert self.breaker.retry_after() == pytest.approx(self.model.retry_after(now))
        assert self.breaker.retry_after() >= 0.0


BreakerMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
test_the_breaker_follows_its_reference_model = BreakerMachine.TestCase
