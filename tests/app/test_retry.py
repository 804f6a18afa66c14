"""RetryPolicy: which failures are retried, how long apart, into which delay tier."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventyard.app.retry import RetryPolicy
from eventyard.errors import ConfigError


class Transient(Exception):
    pass


class Permanent(Transient):
    pass


def test_defaults_are_the_documented_ones() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 3
    assert policy.retry_on == (Exception,)
    assert policy.give_up_on == ()
    assert policy.tiers == (1.0, 10.0, 60.0)
    assert not policy.strict_order


def test_attempts_are_counted_with_the_first_call() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry(ValueError(), 1)
    assert policy.should_retry(ValueError(), 2)
    assert not policy.should_retry(ValueError(), 3)
    assert not RetryPolicy(max_attempts=1).should_retry(ValueError(), 1)


def test_give_up_on_carves_exceptions_out_of_retry_on() -> None:
    policy = RetryPolicy(retry_on=(Transient,), give_up_on=(Permanent,))
    assert policy.should_retry(Transient(), 1)
    assert not policy.should_retry(Permanent(), 1)
    assert not policy.should_retry(ValueError(), 1)


def test_base_exceptions_outside_retry_on_are_not_retried() -> None:
    assert not RetryPolicy().should_retry(KeyboardInterrupt(), 1)


def test_delays_grow_geometrically_up_to_the_cap() -> None:
    policy = RetryPolicy(initial_delay=0.5, multiplier=3.0, max_delay=10.0, jitter=0.0)
    rng = random.Random(1)
    assert [policy.delay(attempt, rng) for attempt in range(1, 6)] == [0.5, 1.5, 4.5, 10.0, 10.0]


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    policy = RetryPolicy(max_delay=30.0, jitter=0.0)
    assert policy.delay(100_000, random.Random(0)) == 30.0


def test_a_zero_initial_delay_retries_at_once() -> None:
    policy = RetryPolicy(initial_delay=0.0, max_delay=0.0)
    assert policy.delay(4, random.Random(0)) == 0.0


def test_jitter_is_drawn_from_the_given_rng() -> None:
    policy = RetryPolicy(initial_delay=1.0, jitter=0.5)
    first = [policy.delay(1, random.Random(42)) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    rng = random.Random(42)
    spread = {policy.delay(1, rng) for _ in range(50)}
    assert len(spread) == 50


@given(
    attempt=st.integers(min_value=1, max_value=2_000),
    initial=st.floats(min_value=0.0, max_value=5.0),
    extra=st.floats(min_value=0.0, max_value=100.0),
    multiplier=st.floats(min_value=1.0, max_value=10.0),
    jitter=st.floats(min_value=0.0, max_value=1.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_a_delay_lies_within_the_jitter_band_and_never_past_the_cap(
    attempt: int, initial: float, extra: float, multiplier: float, jitter: float, seed: int
) -> None:
    policy = RetryPolicy(
        initial_delay=initial, max_delay=initial + extra, multiplier=multiplier, jitter=jitter
    )
    base = policy.base_delay(attempt)
    delay = policy.delay(attempt, random.Random(seed))
    assert base <= policy.max_delay
    assert base * (1.0 - jitter) - 1e-9 <= delay <= base


def test_full_jitter_spreads_over_the_whole_base() -> None:
    policy = RetryPolicy(initial_delay=8.0, max_delay=8.0, jitter=1.0)
    rng = random.Random(7)
    delays = [policy.delay(1, rng) for _ in range(2_000)]
    assert min(delays) < 0.5
    assert max(delays) > 7.5


def test_attempts_are_numbered_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        RetryPolicy().delay(0, random.Random(0))


@pytest.mark.parametrize(
    ("delay", "tier"),
    [(0.0, 0), (0.5, 0), (1.0, 0), (1.01, 1), (10.0, 1), (59.0, 2), (60.0, 2), (3600.0, 2)],
)
def test_the_tier_is_the_smallest_that_is_long_enough(delay: float, tier: int) -> None:
    assert RetryPolicy(tiers=(1.0, 10.0, 60.0)).tier_for(delay) == tier


@given(
    tiers=st.lists(
        st.floats(min_value=0.001, max_value=1e6), min_size=1, max_size=6, unique=True
    ).map(lambda values: tuple(sorted(values))),
    delay=st.floats(min_value=0.0, max_value=2e6),
)
def test_an_event_never_comes_back_early_unless_past_the_last_tier(
    tiers: tuple[float, ...], delay: float
) -> None:
    index = RetryPolicy(tiers=tiers).tier_for(delay)
    assert 0 <= index < len(tiers)
    if delay <= tiers[-1]:
        assert tiers[index] >= delay
        assert index == 0 or tiers[index - 1] < delay
    else:
        assert index == len(tiers) - 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_attempts", 0, "max_attempts must be an integer >= 1"),
        ("max_attempts", True, "max_attempts must be an integer >= 1"),
        ("max_attempts", 2.0, "max_attempts must be an integer >= 1"),
        ("initial_delay", -1.0, "initial_delay must be a finite number >= 0"),
        ("initial_delay", float("nan"), "initial_delay must be a finite number"),
        ("max_delay", float("inf"), "max_delay must be a finite number"),
        ("max_delay", 0.05, r"max_delay \(0.05\) must be >= initial_delay \(0.1\)"),
        ("multiplier", 0.5, "multiplier must be a finite number >= 1"),
        ("jitter", -0.1, "jitter must be a finite number >= 0"),
        ("jitter", 1.5, "jitter must be between 0 and 1"),
        ("retry_on", Exception, "retry_on must be a tuple of exception classes"),
        ("retry_on", (Exception, "x"), "retry_on must be a tuple of exception classes"),
        ("give_up_on", [ValueError], "give_up_on must be a tuple of exception classes"),
        ("strict_order", 1, "strict_order must be a bool"),
        ("tiers", (), "tiers must be a non-empty tuple"),
        ("tiers", [1.0], "tiers must be a non-empty tuple"),
        ("tiers", (0.0, 1.0), "tiers must hold positive finite seconds"),
        ("tiers", (1.0, True), "tiers must hold positive finite seconds"),
        ("tiers", (10.0, 1.0), "tiers must be strictly increasing"),
        ("tiers", (1.0, 1.0), "tiers must be strictly increasing"),
    ],
)
def test_bad_settings_raise_one_clear_line(field: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        RetryPolicy(**{field: value})
    assert str(info.value).startswith(f"RetryPolicy.{field}")
    assert "\n" not in str(info.value)


def test_policies_are_frozen_and_hashable() -> None:
    policy = RetryPolicy(strict_order=True)
    with pytest.raises(AttributeError):
        policy.max_attempts = 9  # type: ignore[misc]
    assert policy == RetryPolicy(strict_order=True)
    assert hash(policy) == hash(RetryPolicy(strict_order=True))
