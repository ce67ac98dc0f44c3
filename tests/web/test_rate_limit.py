"""The per-client token bucket, on a clock the test moves by hand."""

import pytest

from tests.conftest import Clock
from web.rate_limit import RateLimiter


def test_a_client_gets_its_budget_then_waits_for_a_refill():
    clock = Clock(1000.0)
    limiter = RateLimiter(per_minute=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(20.0)  # one request comes back every 60/3 s
    clock.now += 15
    assert limiter.take("a") == pytest.approx(5.0)  # refused requests cost nothing
    clock.now += 5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0


def test_clients_are_limited_separately():
    limiter = RateLimiter(per_minute=1, clock=Clock(1000.0))
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    assert limiter.take("b") == 0.0


def test_an_idle_client_does_not_bank_more_than_one_minute():
    clock = Clock(1000.0)
    limiter = RateLimiter(per_minute=2, clock=clock)
    limiter.take("a")
    clock.now += 3600
    assert [limiter.take("a") > 0 for _ in range(3)] == [False, False, True]


def test_memory_is_bounded_but_limited_clients_are_remembered():
    clock = Clock(1000.0)
    limiter = RateLimiter(per_minute=1, clock=clock)
    limiter.max_clients = 3
    for client in "abc":
        limiter.take(client)
    clock.now += 30  # half refilled: a, b and c still owe
    limiter.take("d")
    assert limiter.take("a") > 0  # not forgotten, so still limited
    clock.now += 60  # everyone full again: forgettable
    limiter.take("e")
    assert len(limiter._buckets) == 1  # only e
