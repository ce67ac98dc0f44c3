"""PresenceSettings: what dann does unprompted in a server, as its admins set it.

    /dann autopost channel every   scheduled posts in a channel (autopost.py), or "off"
    /dann schedules                this server's schedules, chime-ins and quiet hours
    /dann quiet [from to tz]       no scheduled posts or chime-ins in those hours
    /dann chime channel chance     answer unprompted now and then (needs DANN_READ_MESSAGES)

Owners and members with Manage Server, in a server (not in a DM). Each mistake is one line, only
to the admin, and changes nothing.
"""

import discord
from discord import app_commands

from bot.autopost import posting_problem
from bot.commands import SERVERS_ONLY, DannCog, at_text, not_a_manager, subcommand, tell
from bot.presence import parse_chance
from dann.schedule import ScheduleError, interval_text, parse_interval, parse_quiet

NO_INTENT = ("Chime-ins need to read every message, which Discord allows only with the Message Content intent: "
             "dann's host must switch it on in the Developer Portal (Bot -> Privileged Gateway Intents), set "
             "DANN_READ_MESSAGES=true and restart dann.")


class PresenceSettings(DannCog):
    """/dann autopost, /dann schedules, /dann quiet and /dann chime. What they set is kept in the
    bot's `presence` (presence.py, in the state store) and run by the bot's `autopost` scheduler and the
    Conversation cog's chime-ins, which read it there."""

    def not_a_server_manager(self, interaction: discord.Interaction) -> str | None:
        if interaction.guild_id is None:
            return SERVERS_ONLY
        return not_a_manager(self.bot, interaction)

    def channel_here(self, interaction: discord.Interaction, channel) -> tuple[object, str | None]:
        """The channel as the bot sees it, and why dann cannot post there (None: it can)."""
        found = self.bot.get_channel(channel.id)
        if found is None or getattr(found, "guild", None) is None or found.guild.id != interaction.guild_id:
            return None, "I can't see that channel in this server: pick one of its channels that I am in."
        return found, posting_problem(found, interaction.guild_id)

    @subcommand(name="autopost", description="dann posts in a channel on a schedule")
    @app_commands.describe(channel="Where to post", every="How often: 90m, 6h, 1d… (10m at least), or off")
    async def autopost(self, interaction: discord.Interaction, channel: app_commands.AppCommandChannel,
                       every: app_commands.Range[str, 1, 20]) -> None:
        if refusal := self.not_a_server_manager(interaction):
            await tell(interaction, refusal)
            return
        try:
            if every.strip().lower() == "off":
                mine = self.bot.presence.autoposts().get(channel.id, {}).get("guild") == interaction.guild_id
                removed = mine and self.bot.autopost.unschedule(channel.id)  # never another server's
                await tell(interaction, f"No more scheduled posts in <#{channel.id}>." if removed
                           else f"There were no scheduled posts in <#{channel.id}>.")
                return
            seconds = parse_interval(every)
            found, problem = self.channel_here(interaction, channel)
            if found is None:
                await tell(interaction, problem)
                return
            first = self.bot.autopost.schedule(found.id, interaction.guild_id, seconds)
        except ScheduleError as error:
            await tell(interaction, f"Could not schedule that: {error}")
            return
        note = f"dann posts in <#{found.id}> every {interval_text(seconds)}, the first at {at_text(first.timestamp())}."
        if problem:
            note += (f" But right now {problem}: the schedule is kept, and each post is skipped (and logged) until "
                     "that is fixed.")
        await tell(interaction, note)

    @subcommand(name="schedules", description="This server's scheduled posts, chime-ins and quiet hours")
    async def schedules(self, interaction: discord.Interaction) -> None:
        if interaction.guild_id is None:
            await tell(interaction, SERVERS_ONLY)
            return
        mine = self.bot.presence.of_guild(interaction.guild_id)
        lines = []
        for channel_id, entry in sorted(mine["autopost"].items()):
            due = self.bot.autopost.next_run(channel_id)
            lines.append(f"• posts in <#{channel_id}> every {interval_text(entry['every_s'])}"
                         + (f", next at {at_text(due.timestamp())}" if due else ""))
        for channel_id, entry in sorted(mine["chime"].items()):
            lines.append(f"• chimes in in <#{channel_id}> with a chance of {entry['chance'] * 100:g}% a message"
                         + ("" if self.bot.settings.read_messages else " (off: DANN_READ_MESSAGES is not set)"))
        if quiet := mine["quiet"]:
            lines.append(f"• quiet from {quiet['from']}:00 to {quiet['to']}:00 ({quiet['tz']})")
        await tell(interaction, "\n".join(lines) if lines else
                   "Nothing scheduled here: dann speaks only when spoken to. See /dann autopost and /dann chime.")

    @subcommand(name="quiet", description="No scheduled posts or chime-ins in these hours")
    @app_commands.rename(start="from", end="to", zone="tz")
    @app_commands.describe(start="Hour quiet starts, 0-23 (leave out from and to to end quiet hours)",
                           end="Hour quiet ends, 0-23", zone="Time zone of those hours, such as Europe/Berlin")
    async def quiet(self, interaction: discord.Interaction, start: app_commands.Range[int, 0, 23] | None = None,
                    end: app_commands.Range[int, 0, 23] | None = None,
                    zone: app_commands.Range[str, 1, 64] = "UTC") -> None:
        if refusal := self.not_a_server_manager(interaction):
            await tell(interaction, refusal)
            return
        try:
            if start is None and end is None:
                had = self.bot.presence.set_quiet(interaction.guild_id, None)
                await tell(interaction, "No more quiet hours here." if had else "There were no quiet hours here.")
                return
            if start is None or end is None:
                raise ScheduleError("give both from and to (or neither, to end quiet hours)")
            quiet = parse_quiet(start, end, zone.strip())
            self.bot.presence.set_quiet(interaction.guild_id, quiet)
        except ScheduleError as error:
            await tell(interaction, f"Could not set quiet hours: {error}")
            return
        await tell(interaction, f"Quiet from {start}:00 to {end}:00 ({quiet['tz']}): no scheduled posts or "
                                "chime-ins then. Mentions are still answered.")

    @subcommand(name="chime", description="dann now and then answers a message nobody asked it about")
    @app_commands.describe(channel="Where", chance="Chance per message, such as 2% (50% at most; 0 turns it off)")
    async def chime(self, interaction: discord.Interaction, channel: app_commands.AppCommandChannel,
                    chance: app_commands.Range[str, 1, 10]) -> None:
        if refusal := self.not_a_server_manager(interaction):
            await tell(interaction, refusal)
            return
        if not self.bot.settings.read_messages:
            await tell(interaction, NO_INTENT)
            return
        try:
            share = parse_chance(chance)
            found, problem = self.channel_here(interaction, channel)
            if found is None or (problem and share > 0):
                await tell(interaction, problem)
                return
            had = self.bot.presence.set_chime(found.id, interaction.guild_id, share)
        except ScheduleError as error:
            await tell(interaction, f"Could not set chime-ins: {error}")
            return
        if share == 0:
            await tell(interaction, f"No more chime-ins in <#{found.id}>." if had else
                       f"dann was not chiming in in <#{found.id}>.")
            return
        gap = self.bot.settings.chime_gap_s
        await tell(interaction, f"dann chimes in in <#{found.id}> on {share * 100:g}% of the messages"
                                + (f", at most once every {interval_text(gap)}" if gap else "")
                                + ", never on bots or in a reply chain past its cap.")
