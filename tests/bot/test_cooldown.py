"""Flood control, on a clock the test moves by hand (the per-minute caps use the real clock)."""

from bot.cooldown import IN_FLIGHT_WAIT_S, Cooldown
from tests.conftest import Clock


def asked(cooldown, user, channel, guild=None) -> float:
    """One request that is answered at once: acquired, then released as the reply is sent."""
    wait = cooldown.try_acquire(user, channel, guild)
    if not wait:
        cooldown.release(user)
    return wait


def test_a_person_waits_and_so_does_the_channel():
    clock = Clock()
    cooldown = Cooldown(user_s=10, channel_s=3, clock=clock)
    assert asked(cooldown, user=1, channel=50) == 0
    assert asked(cooldown, 1, 50) == 10  # the person's wait
    assert asked(cooldown, 2, 50) == 3  # someone else, same channel
    assert asked(cooldown, 2, 60) == 0  # someone else, elsewhere
    assert asked(cooldown, 1, 70) == 10  # the person, elsewhere: still waiting
    clock.now += 3
    assert asked(cooldown, 3, 50) == 0
    clock.now += 7
    assert asked(cooldown, 1, 70) == 0


def test_asking_while_waiting_does_not_extend_the_wait():
    clock = Clock()
    cooldown = Cooldown(user_s=10, channel_s=0, clock=clock)
    asked(cooldown, 1, 50)
    for _ in range(5):
        clock.now += 1.9
        asked(cooldown, 1, 50)
    clock.now += 0.6  # 10 s after the first request
    assert asked(cooldown, 1, 50) == 0


def test_one_reply_in_flight_per_person():
    cooldown = Cooldown(user_s=0, channel_s=0, clock=Clock())
    assert cooldown.try_acquire(1, 50) == 0
    assert cooldown.try_acquire(1, 60) == IN_FLIGHT_WAIT_S  # still thinking about the first
    assert cooldown.try_acquire(2, 50) == 0  # others are not held up
    cooldown.release(1)
    assert cooldown.try_acquire(1, 60) == 0


def test_one_notice_per_wait_per_person_and_per_channel():
    clock = Clock()
    cooldown = Cooldown(user_s=10, channel_s=10, clock=clock)
    asked(cooldown, 1, 50)
    wait = asked(cooldown, 1, 50)
    assert cooldown.should_notice(1, 50, wait)
    assert not cooldown.should_notice(1, 50, asked(cooldown, 1, 50))
    assert not cooldown.should_notice(2, 50, asked(cooldown, 2, 50))  # the channel has had its notice
    assert cooldown.should_notice(3, 60, 5)  # someone elsewhere gets their own
    clock.now += 10
    asked(cooldown, 1, 50)
    assert cooldown.should_notice(1, 50, asked(cooldown, 1, 50))  # a new wait, a new notice


def test_a_server_cap_and_a_global_cap():
    cooldown = Cooldown(user_s=0, channel_s=0, server_per_minute=2, global_per_minute=3, clock=Clock())
    assert [asked(cooldown, u, u, guild=7) for u in range(3)][:2] == [0, 0]
    assert 55 < asked(cooldown, 9, 9, guild=7) <= 60  # the server has had its two this minute
    assert asked(cooldown, 10, 10, guild=8) == 0  # another server: the third of the minute overall
    assert 55 < asked(cooldown, 11, 11, guild=9) <= 60  # a fresh server, but everyone has had three
    assert asked(cooldown, 12, 12) > 0  # DMs count against the global cap too


def test_zero_seconds_means_no_cooldown():
    cooldown = Cooldown(user_s=0, channel_s=0, clock=Clock())
    assert all(asked(cooldown, 1, 50) == 0 for _ in range(3))


def test_it_forgets_waits_that_are_over():
    clock = Clock()
    cooldown = Cooldown(user_s=1, channel_s=1, global_per_minute=10_000, clock=clock)
    for user in range(5000):
        asked(cooldown, user, user)
        clock.now += 0.01
    assert len(cooldown._user_until) < 2100  # without forgetting: 5000
