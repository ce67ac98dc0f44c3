"""Scheduled posts: `/dann autopost channel:#x every:6h` makes dann post in #x every six hours.

The schedules live in the state store (presence.py) and run in the bot process on the scheduler
the poster uses too (dann/schedule.py's PostingGrid), one job per channel:
- on a fixed grid from the moment the schedule was made (`since`), each run moved by a random
  jitter of up to DANN_AUTOPOST_JITTER_S (at most a tenth of the interval) that never accumulates;
- a slow post is never overtaken by the next;
- runs missed while the bot was down are made up by one post when it is back, not one per missed
  run. The last run is recorded, so a restart knows what it missed.

Each run posts a "post:" generation through the same filters as any other text, unless
- the server (or all of dann) is paused, or it is the server's quiet hours;
- the channel is gone, or dann may not post in it (the schedule is kept: the admin may fix the
  permissions), or no model is ready;
and every skip is a log line.
"""

import datetime
import logging

import discord

from bot.presence import PresenceError
from bot.text import NO_PINGS, clip
from dann.schedule import PostingGrid, interval_text, is_quiet

log = logging.getLogger("dann.discord")
UTC = datetime.UTC


def posting_problem(channel, guild_id: int | None) -> str | None:
    """Why dann cannot post in this channel, or None."""
    if channel is None or getattr(channel, "guild", None) is None or channel.guild.id != guild_id:
        return "that channel is not one dann can see in this server"
    if not isinstance(channel, discord.abc.Messageable) or isinstance(channel, discord.CategoryChannel):
        return f"#{channel.name} is not a channel that takes messages"
    permissions = channel.permissions_for(channel.guild.me)
    if not (permissions.view_channel and (permissions.send_messages_in_threads if isinstance(channel, discord.Thread)
                                          else permissions.send_messages)):
        return f"dann may not post in #{channel.name} (it needs View Channel and Send Messages there)"
    return None


class Autoposter:
    def __init__(self, bot, clock=lambda: datetime.datetime.now(UTC)):
        self.bot = bot
        self.clock = clock
        self.grid = PostingGrid(clock)

    @property
    def scheduler(self):
        return self.grid.scheduler

    @property
    def running(self) -> bool:
        return self.grid.running

    def start(self) -> None:
        """Schedule every stored autopost and start. Call it with the event loop running, once
        the bot can see its servers (a run due at once needs its channel)."""
        for channel_id, entry in self.bot.presence.autoposts().items():
            self._add(channel_id, entry)
        self.grid.start()

    def stop(self) -> None:
        self.grid.stop()

    def _add(self, channel_id: int, entry: dict) -> datetime.datetime:
        # The first run is one interval after the schedule was made; after a restart, the next is
        # the first after the last that happened.
        return self.grid.add(str(channel_id), self.run, [channel_id], every_s=float(entry["every_s"]),
                             since=entry["since"], last=entry.get("last"), jitter_s=self.bot.settings.autopost_jitter_s)

    def schedule(self, channel_id: int, guild_id: int, every_s: float) -> datetime.datetime:
        """Store and start a schedule (replacing the channel's old one). Returns its first run."""
        since = self.clock().timestamp()
        self.bot.presence.set_autopost(channel_id, guild_id, every_s, since)
        return self._add(channel_id, self.bot.presence.autoposts()[channel_id])

    def unschedule(self, channel_id: int) -> bool:
        removed = self.bot.presence.remove_autopost(channel_id)
        self.grid.remove(str(channel_id))
        return removed

    def next_run(self, channel_id: int) -> datetime.datetime | None:
        return self.grid.next_run(str(channel_id))

    async def run(self, channel_id: int) -> None:
        """One scheduled run; it never raises, so the schedule goes on."""
        entry = self.bot.presence.autoposts().get(channel_id)
        if entry is None:
            return
        try:
            outcome = await self._post(channel_id, entry)
        except Exception:
            log.exception("autopost in channel %s failed", channel_id)
            outcome = "failed"
        if outcome:
            log.info("autopost in channel %s (every %s): %s", channel_id, interval_text(entry["every_s"]), outcome)
        try:
            self.bot.presence.ran(channel_id, self.clock().timestamp())
        except PresenceError as error:
            log.error("autopost: %s", error)

    async def _post(self, channel_id: int, entry: dict) -> str | None:
        """Posts, or returns why it skipped this run (None: posted)."""
        guild_id = entry["guild"]
        if not self.bot.guild_allowed(guild_id):
            return "skipped: the server is not in DANN_DISCORD_GUILD_IDS"
        if self.bot.pause_of(guild_id) is not None:
            return "skipped: paused"
        if is_quiet(self.bot.presence.quiet_of(guild_id), self.clock()):
            return "skipped: quiet hours"
        channel = self.bot.get_channel(channel_id)
        if problem := posting_problem(channel, guild_id):
            return f"skipped: {problem}"
        text, version = await self.bot.speak("post", client=f"autopost:{channel_id}")
        if version is None:
            return f"skipped: {text}"  # no model yet, or busy: the sentence is for people, not the channel
        try:
            sent = await channel.send(clip(text), allowed_mentions=NO_PINGS)
        except discord.Forbidden:
            return "skipped: Discord refused the post (missing permissions)"
        await self.bot.remember(sent, version)
        return None
