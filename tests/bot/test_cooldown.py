"""The cooldown, on a clock the test moves by hand."""

from bot.cooldown import Cooldown
from tests.conftest import Clock


def test_a_person_waits_and_so_does_the_channel():
    clock = Clock()
    cooldown = Cooldown(user_s=10, channel_s=3, clock=clock)
    assert cooldown.try_acquire(user_id=1, channel_id=50) == 0
    assert cooldown.try_acquire(1, 50) == 10  # the person's wait
    assert cooldown.try_acquire(2, 50) == 3  # someone else, same channel
    assert cooldown.try_acquire(2, 60) == 0  # someone else, elsewhere
    assert cooldown.try_acquire(1, 70) == 10  # the person, elsewhere: still waiting
    clock.now += 3
    assert cooldown.try_acquire(3, 50) == 0
    clock.now += 7
    assert cooldown.try_acquire(1, 70) == 0


def test_asking_while_waiting_does_not_extend_the_wait():
    clock = Clock()
    cooldown = Cooldown(user_s=10, channel_s=0, clock=clock)
    cooldown.try_acquire(1, 50)
    for _ in range(5):
        clock.now += 1.9
        cooldown.try_acquire(1, 50)
    clock.now += 0.6  # 10 s after the first request
    assert cooldown.try_acquire(1, 50) == 0


def test_one_notice_per_wait():
    clock = Clock()
    cooldown = Cooldown(user_s=10, channel_s=0, clock=clock)
    cooldown.try_acquire(1, 50)
    wait = cooldown.try_acquire(1, 50)
    assert cooldown.should_notice(1, wait)
    assert not cooldown.should_notice(1, cooldown.try_acquire(1, 50))
    assert cooldown.should_notice(2, 5)  # someone else gets their own
    clock.now += 10
    cooldown.try_acquire(1, 50)
    assert cooldown.should_notice(1, cooldown.try_acquire(1, 50))  # a new wait, a new notice


def test_zero_seconds_means_no_cooldown():
    cooldown = Cooldown(user_s=0, channel_s=0, clock=Clock())
    assert all(cooldown.try_acquire(1, 50) == 0 for _ in range(3))


def test_it_forgets_waits_that_are_over():
    clock = Clock()
    cooldown = Cooldown(user_s=1, channel_s=1, clock=clock)
    for user in range(5000):
        cooldown.try_acquire(user, user)
        clock.now += 0.01
    assert len(cooldown._user_until) < 2100  # without forgetting: 5000
