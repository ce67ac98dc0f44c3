"""Scheduled posts on the real APScheduler, with a fake clock: the scheduler's, its executor's and
the autoposter's idea of "now" is one the test moves by hand."""

import asyncio
import datetime
import itertools
import logging
from zoneinfo import ZoneInfo

import apscheduler.executors.base
import apscheduler.schedulers.base
import discord
import discord.ext.test as dpytest
import pytest

from bot.autopost import Autoposter
from bot.presence import Presence
from dann.schedule import is_quiet
from dann.state import Store
from tests.bot.helpers import connect, dann, interaction, said, settings_for, slash

UTC = datetime.UTC
START = datetime.datetime(2026, 6, 1, 0, 0, tzinfo=UTC)  # a Monday; Berlin is UTC+2 (summer time)
BERLIN = ZoneInfo("Europe/Berlin")


class FakeClock:
    def __init__(self, now: datetime.datetime):
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock(START)

    class Frozen(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return fake.now.astimezone(tz) if tz else fake.now.replace(tzinfo=None)

    # The only reads of the time in APScheduler's scheduler and executor are datetime.now().
    monkeypatch.setattr(apscheduler.schedulers.base, "datetime", Frozen)
    monkeypatch.setattr(apscheduler.executors.base, "datetime", Frozen)
    return fake


async def start(service, clock, restart=None, **overrides):
    """A bot on dpytest's fake server with its autoposter started on the fake clock, and the list
    of fake times at which it posted. With `restart` (a bot whose autoposter was stopped), that
    bot's schedules are forgotten and read back from the database, as a restarted process reads them (a
    new bot would be in a new dpytest server, whose channels have other ids)."""
    if restart is None:
        bot = await connect(settings_for(service.checkpoint_dir, **overrides), service)
    else:
        bot = restart
        bot.remember = type(bot).remember.__get__(bot)
        bot.presence = Presence(Store(f"sqlite:///{bot.presence.store.where}"))
    bot.autopost = Autoposter(bot, clock)
    posted = []
    real = bot.remember

    async def remember(sent, version):
        posted.append(clock.now)
        await real(sent, version)

    bot.remember = remember
    bot.autopost.start()
    return bot, posted


async def settle(bot) -> None:
    """Wait for every job the scheduler has started to finish."""
    executor = bot.autopost.scheduler._lookup_executor("default")
    for _ in range(3):
        await asyncio.sleep(0)
        while executor._pending_futures:
            await asyncio.gather(*list(executor._pending_futures))


async def advance(bot, clock, hours: float, step_minutes: float = 10) -> None:
    end = clock.now + datetime.timedelta(hours=hours)
    while clock.now < end:
        clock.now = min(end, clock.now + datetime.timedelta(minutes=step_minutes))
        bot.autopost.scheduler.wakeup()
        await settle(bot)


def manager():
    """A Manage Server admin of dpytest's server, in its first channel."""
    config = dpytest.get_config()
    return interaction(user_id=config.members[1].id, channel_id=config.channels[0].id, guild_id=config.guilds[0].id,
                       manage_guild=True)


async def command(bot, name, **options) -> str:
    inter = manager()
    await slash(bot, name, inter, **options)
    return said(inter)


def drain() -> int:
    count = 0
    while not dpytest.verify().message().nothing():
        dpytest.get_message()
        count += 1
    return count


@pytest.mark.slow
async def test_every_6h_posts_4_times_a_day_never_in_quiet_hours_nor_while_paused(service, clock, caplog):
    caplog.set_level(logging.INFO, logger="dann.discord")
    bot, posted = await start(service, clock)
    channel = dpytest.get_config().channels[0]
    answer = await command(bot, "autopost", channel=channel, every="6h")
    assert answer.startswith(f"dann posts in <#{channel.id}> every 6h, the first at ")

    await advance(bot, clock, 48 + 1, step_minutes=1)
    assert len(posted) == 8 and drain() == 8
    for day in (0, 1):  # four in each day (days that start between two runs of the grid)
        begin = START + datetime.timedelta(days=day, hours=3)
        assert sum(begin <= t < begin + datetime.timedelta(days=1) for t in posted) == 4
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(posted)]
    assert all(abs(gap - 6 * 3600) <= 300 for gap in gaps)  # the jitter never carries over
    assert len(set(gaps)) > 1  # ... but there is one

    answer = await command(bot, "quiet", start=23, end=8, zone="Europe/Berlin")
    assert answer.startswith("Quiet from 23:00 to 8:00 (Europe/Berlin)")
    posted.clear()
    await advance(bot, clock, 48)
    quiet = {"from": 23, "to": 8, "tz": "Europe/Berlin"}
    assert posted and not any(is_quiet(quiet, t) for t in posted)
    assert len(posted) == 6  # 02:00 Berlin (00:00 UTC) fell in the quiet hours, twice
    assert drain() == 6
    assert "skipped: quiet hours" in caplog.text

    await slash(bot, "pause", manager(), minutes=None)  # this server, until resumed
    posted.clear()
    await advance(bot, clock, 24)
    assert posted == [] and drain() == 0
    assert "skipped: paused" in caplog.text
    await slash(bot, "resume", manager())
    await advance(bot, clock, 12)
    assert len(posted) == 2
    drain()
    bot.autopost.stop()


async def test_after_two_days_down_it_posts_once_and_the_schedule_survives_the_restart(service, clock):
    bot, posted = await start(service, clock)
    channel = dpytest.get_config().channels[0]
    await command(bot, "autopost", channel=channel, every="6h")
    await advance(bot, clock, 6.5)
    assert len(posted) == 1
    bot.autopost.stop()
    await dpytest.empty_queue()

    clock.now += datetime.timedelta(days=2)  # down: 8 runs missed
    again, posted_again = await start(service, clock, restart=bot)
    again.autopost.scheduler.wakeup()
    await settle(again)
    assert len(posted_again) == 1  # the missed runs made up by one post, not 8
    assert "every 6h" in await command(again, "schedules")
    await advance(again, clock, 12)
    assert len(posted_again) == 3  # and then on the grid again
    _first, second, third = posted_again
    assert abs((third - second).total_seconds() - 6 * 3600) <= 300
    again.autopost.stop()

    # Restarted within the interval, it misses nothing and makes nothing up.
    third_bot, posted_third = await start(service, clock, restart=again)
    third_bot.autopost.scheduler.wakeup()
    await settle(third_bot)
    assert posted_third == []
    await advance(third_bot, clock, 6)
    assert len(posted_third) == 1
    third_bot.autopost.stop()
    await dpytest.empty_queue()


async def test_off_stops_it_and_an_admin_gets_one_line_for_each_mistake(service, clock, caplog):
    caplog.set_level(logging.INFO, logger="dann.discord")
    bot, posted = await start(service, clock)
    config = dpytest.get_config()
    channel = config.channels[0]

    assert "shortest interval is 10 minutes" in await command(bot, "autopost", channel=channel, every="5m")
    assert "not an interval" in await command(bot, "autopost", channel=channel, every="sometimes")

    class Elsewhere:
        id = 987654321  # a channel of another server, or one dann cannot see

    assert "can't see that channel" in await command(bot, "autopost", channel=Elsewhere(), every="6h")
    assert "not a known time zone" in await command(bot, "quiet", start=23, end=8, zone="Mars/Olympus")
    assert "two different hours" in await command(bot, "quiet", start=8, end=8, zone="UTC")
    assert bot.presence.autoposts() == {} and bot.presence.quiet_of(config.guilds[0].id) is None

    inter = interaction(user_id=config.members[0].id, channel_id=channel.id, guild_id=config.guilds[0].id)
    await slash(bot, "autopost", inter, channel=channel, every="6h")
    assert "Manage Server" in said(inter)

    # A channel dann may not post in: the admin is told, the schedule is kept, each run is skipped.
    await dpytest.set_permission_overrides(channel.guild.default_role, channel, send_messages=False)
    answer = await command(bot, "autopost", channel=channel, every="1h")
    assert "may not post in" in answer and "the schedule is kept" in answer
    await advance(bot, clock, 2.5)
    assert posted == [] and drain() == 0
    assert caplog.text.count("skipped: dann may not post in") == 2
    await dpytest.set_permission_overrides(channel.guild.default_role, channel, send_messages=True)
    await advance(bot, clock, 1)
    assert len(posted) == 1 and drain() == 1

    # Another server's admin naming this channel cannot end its schedule.
    elsewhere = interaction(user_id=config.members[0].id, channel_id=channel.id, guild_id=config.guilds[0].id + 1,
                            manage_guild=True)
    await slash(bot, "autopost", elsewhere, channel=channel, every="off")
    assert "There were no scheduled posts" in said(elsewhere) and channel.id in bot.presence.autoposts()
    assert "No more scheduled posts" in await command(bot, "autopost", channel=channel, every="off")
    await advance(bot, clock, 3)
    assert len(posted) == 1
    assert "Nothing scheduled here" in await command(bot, "schedules")
    bot.autopost.stop()


async def test_the_commands_take_what_the_readme_shows(service):
    # `every` is free text (6h, 90m, off), `from`/`to` are hours: Discord shows these names.
    bot = await connect(settings_for(service.checkpoint_dir), service)
    quiet = dann(bot).get_command("quiet")
    assert [p.display_name for p in quiet.parameters] == ["from", "to", "tz"]
    assert [(p.min_value, p.max_value) for p in quiet.parameters[:2]] == [(0, 23), (0, 23)]
    autopost = dann(bot).get_command("autopost")
    assert [p.name for p in autopost.parameters] == ["channel", "every"]
    assert autopost.parameters[0].type == discord.AppCommandOptionType.channel

