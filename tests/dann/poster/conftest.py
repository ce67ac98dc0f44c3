"""Shared pieces of the poster tests: a fake clock the poster reads and a sleep that moves it."""

import pytest

from tests.dann.poster.fake import FakeServer

START = 1_780_000_000.0  # a fixed Unix time: the grid's origin in every test


class FakeTime:
    """The poster's clock and sleep: sleeping moves the clock, and is recorded."""

    def __init__(self, now: float = START):
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time():
    return FakeTime()


@pytest.fixture
def fake_server():
    server = FakeServer()
    yield server
    server.stop()


def poster_settings(checkpoint_dir, **overrides):
    """Settings for a poster test: every 6 h without jitter, a tick a minute, the tiny model's sampling."""
    from dann.settings import Settings

    options = {"checkpoint_dir": checkpoint_dir, "temperature": 0.05, "max_chars": 60, "poster_every": "6h",
               "poster_jitter_s": 0, "poster_poll_s": 60, "reload_poll_s": 0.05,
               "poster_author_cooldown_s": 0}
    return Settings(_env_file=None, **{**options, **overrides})


async def at(poster, fake_time, *hours, origin=START):
    """Tick the poster at each of these hours after `origin` on the fake clock."""
    for hour in hours:
        fake_time.now = origin + hour * 3600.0
        await poster.tick()
