"""The /dann slash commands and the "Delete and forget" message command.

    /dann post [temp]        a post in the voice            anyone dann answers here
    /dann reply text [temp]  a reply to a text
    /dann status             which model is served           anyone (only the asker sees it)
    /dann about              what dann is and whose voice    anyone, in public
    /dann pause [minutes]    stop answering (owner: everywhere; Manage Server: this server)
    /dann resume             end that pause
    /dann forget text        never say a phrase again        owners
    /dann autopost channel every   post every 6h (or "off")     owners, Manage Server
    /dann schedules          this server's autoposts, chime-ins and quiet hours
    /dann quiet [from to tz] no autoposts or chime-ins in those hours (none given: off)
    /dann chime channel chance     answer unprompted now and then (DANN_READ_MESSAGES)
    Delete and forget        on one of dann's messages: the owner, or the person it answered

Every permission is checked here in the handler: Discord's own command permissions can be
changed by any server admin, so they are a convenience, not the rule.
"""

import datetime

import discord
from discord import app_commands
from discord.ext.commands import Bot

from bot.autopost import posting_problem
from bot.control import ControlError
from bot.presence import parse_chance
from bot.text import NO_PINGS, clip, prompt_text, quote, wait_notice
from dann.schedule import ScheduleError, interval_text, parse_interval, parse_quiet
from dann.serving.status import about
from dann.voice.forget import MAX_PHRASE_CHARS, ForgetError

MAX_PAUSE_MINUTES = 7 * 24 * 60
OWNER_ONLY = "Only dann's owner can do that."
MANAGERS_ONLY = "Only dann's owner, or an admin of this server (Manage Server), can do that."
SERVERS_ONLY = "That is set per server: use it in a server, not in a DM."
NO_INTENT = ("Chime-ins need to read every message, which Discord allows only with the Message Content intent: "
             "dann's host must switch it on in the Developer Portal (Bot -> Privileged Gateway Intents), set "
             "DANN_READ_MESSAGES=true and restart dann.")


def may_manage(bot: Bot, interaction: discord.Interaction) -> bool:
    """An owner, or a member allowed to manage this server (not in a DM)."""
    if bot.is_owner(interaction.user.id):
        return True
    return interaction.guild_id is not None and bool(interaction.permissions.manage_guild)


def at_text(when: float) -> str:
    """A moment every reader sees in their own zone, and how far off it is."""
    moment = datetime.datetime.fromtimestamp(when, datetime.UTC)
    return f"{discord.utils.format_dt(moment, 't')} ({discord.utils.format_dt(moment, 'R')})"


def until_text(until: float | None) -> str:
    return "until someone resumes it" if until is None else f"until {at_text(until)}"


# An interaction's token, and with it the "thinking…" message, lasts 15 minutes; an answer the
# model finishes later could never be sent, so it is dropped before it is sampled.
INTERACTION_LIFETIME = datetime.timedelta(minutes=15)


def time_left(interaction: discord.Interaction) -> float:
    """Seconds left to answer this interaction, with a margin for sending the answer (0 or less:
    too late already)."""
    left = interaction.created_at + INTERACTION_LIFETIME - discord.utils.utcnow()
    return left.total_seconds() - 10


async def tell(interaction: discord.Interaction, text: str) -> None:
    """A short answer only the asker sees."""
    await interaction.response.send_message(clip(text), ephemeral=True, allowed_mentions=NO_PINGS)


class DannCommands(app_commands.Group):
    def __init__(self, bot: Bot):
        super().__init__(name="dann", description="dann speaks in one person's voice")
        self.bot = bot

    async def _refused(self, interaction: discord.Interaction) -> bool:
        """Answers (only to the asker) and returns True when dann may not speak for them here, or
        the cooldown holds."""
        refusal = self.bot.refusal(interaction.user.id, interaction.guild_id)
        if refusal:
            await tell(interaction, refusal)
            return True
        wait = self.bot.cooldown.try_acquire(interaction.user.id, interaction.channel_id or interaction.user.id,
                                             interaction.guild_id)
        if wait:
            await tell(interaction, wait_notice(wait))  # only the asker sees it: no channel to flood
        return bool(wait)

    def _not_a_manager(self, interaction: discord.Interaction) -> str | None:
        """Why this person may not pause or resume dann here, or None."""
        if not self.bot.guild_allowed(interaction.guild_id):
            return self.bot.refusal(interaction.user.id, interaction.guild_id)
        return None if may_manage(self.bot, interaction) else MANAGERS_ONLY

    @app_commands.command(name="post", description="dann posts something new")
    @app_commands.describe(temp="How adventurous, 0.05 to 2.0: low is safe and repetitive, high is wild")
    async def post(self, interaction: discord.Interaction,
                   temp: app_commands.Range[float, 0.05, 2.0] | None = None) -> None:
        if await self._refused(interaction):
            return
        try:
            await interaction.response.defer(thinking=True)  # Discord wants an answer within 3 s
            text, version = await self.bot.speak("post", temperature=temp, client=str(interaction.user.id),
                                                 deadline_s=time_left(interaction))
            self.bot.remember(await interaction.followup.send(clip(text), allowed_mentions=NO_PINGS, wait=True),
                              version)
        finally:
            self.bot.cooldown.release(interaction.user.id)

    @app_commands.command(name="reply", description="dann replies to a text you give it")
    @app_commands.describe(text="What dann should reply to", temp="How adventurous, 0.05 to 2.0")
    async def reply(self, interaction: discord.Interaction, text: app_commands.Range[str, 1, 1000],
                    temp: app_commands.Range[float, 0.05, 2.0] | None = None) -> None:
        if await self._refused(interaction):
            return
        try:
            await interaction.response.defer(thinking=True)
            context = prompt_text(text, self.bot.settings.max_prompt_chars) or None
            answer, version = await self.bot.speak("reply", temperature=temp, context=context,
                                                   client=str(interaction.user.id), deadline_s=time_left(interaction))
            self.bot.remember(await interaction.followup.send(clip(f"{quote(text)}\n{answer}"),
                                                              allowed_mentions=NO_PINGS, wait=True), version)
        finally:
            self.bot.cooldown.release(interaction.user.id)

    @app_commands.command(name="status", description="Which model dann is using, when it was trained, how good it is")
    async def status(self, interaction: discord.Interaction) -> None:
        await tell(interaction, self.bot.status_text())

    @app_commands.command(name="about", description="What dann is, whose voice it imitates, and who runs it")
    async def about(self, interaction: discord.Interaction) -> None:
        owners = self.bot.settings.owner_name or ", ".join(f"<@{owner}>" for owner in self.bot.settings.owner_ids)
        text = about(self.bot.service.status(), voice=self.bot.settings.voice_name, owner=owners or None)
        # In public: anyone in the channel should be able to see that this is a bot, and whose.
        await interaction.response.send_message(clip(text), allowed_mentions=NO_PINGS)

    @app_commands.command(name="pause", description="dann stops answering (its owner: everywhere; admins: here)")
    @app_commands.describe(minutes="For how long; leave it out to pause until /dann resume")
    async def pause(self, interaction: discord.Interaction,
                    minutes: app_commands.Range[int, 1, MAX_PAUSE_MINUTES] | None = None) -> None:
        if refusal := self._not_a_manager(interaction):
            await tell(interaction, refusal)
            return
        everywhere = self.bot.is_owner(interaction.user.id)
        try:
            until = self.bot.control.pause(None if everywhere else interaction.guild_id, minutes)
        except ControlError as error:
            await tell(interaction, f"Could not pause: {error}")
            return
        where = "everywhere" if everywhere else "in this server"
        await tell(interaction, f"Paused {where} {until_text(until)}. Only the owner gets answers meanwhile.")

    @app_commands.command(name="resume", description="dann answers again after /dann pause")
    async def resume(self, interaction: discord.Interaction) -> None:
        if refusal := self._not_a_manager(interaction):
            await tell(interaction, refusal)
            return
        owner = self.bot.is_owner(interaction.user.id)
        try:
            ended = [self.bot.control.resume(where) for where in
                     ([None] if owner else []) + ([interaction.guild_id] if interaction.guild_id else [])]
        except ControlError as error:
            await tell(interaction, f"Could not resume: {error}")
            return
        still = self.bot.pause_of(interaction.guild_id)
        if still:
            await tell(interaction, f"dann's owner paused it everywhere {until_text(still['until'])}; only they "
                                    "can resume it.")
        else:
            await tell(interaction, "Resumed: dann answers again." if any(ended) else "dann was not paused.")

    # --- presence: scheduled posts, quiet hours, chime-ins ----------------------------------------

    def _not_a_server_manager(self, interaction: discord.Interaction) -> str | None:
        if interaction.guild_id is None:
            return SERVERS_ONLY
        return self._not_a_manager(interaction)

    def _channel_here(self, interaction: discord.Interaction, channel) -> tuple[object, str | None]:
        """The channel as the bot sees it, and why dann cannot post there (None: it can)."""
        found = self.bot.get_channel(channel.id)
        if found is None or getattr(found, "guild", None) is None or found.guild.id != interaction.guild_id:
            return None, "I can't see that channel in this server: pick one of its channels that I am in."
        return found, posting_problem(found, interaction.guild_id)

    @app_commands.command(name="autopost", description="dann posts in a channel on a schedule")
    @app_commands.describe(channel="Where to post", every="How often: 90m, 6h, 1d… (10m at least), or off")
    async def autopost(self, interaction: discord.Interaction, channel: app_commands.AppCommandChannel,
                       every: app_commands.Range[str, 1, 20]) -> None:
        if refusal := self._not_a_server_manager(interaction):
            await tell(interaction, refusal)
            return
        try:
            if every.strip().lower() == "off":
                removed = self.bot.autopost.unschedule(channel.id)
                await tell(interaction, f"No more scheduled posts in <#{channel.id}>." if removed
                           else f"There were no scheduled posts in <#{channel.id}>.")
                return
            seconds = parse_interval(every)
            found, problem = self._channel_here(interaction, channel)
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

    @app_commands.command(name="schedules", description="This server's scheduled posts, chime-ins and quiet hours")
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

    @app_commands.command(name="quiet", description="No scheduled posts or chime-ins in these hours")
    @app_commands.rename(start="from", end="to", zone="tz")
    @app_commands.describe(start="Hour quiet starts, 0-23 (leave out from and to to end quiet hours)",
                           end="Hour quiet ends, 0-23", zone="Time zone of those hours, such as Europe/Berlin")
    async def quiet(self, interaction: discord.Interaction, start: app_commands.Range[int, 0, 23] | None = None,
                    end: app_commands.Range[int, 0, 23] | None = None,
                    zone: app_commands.Range[str, 1, 64] = "UTC") -> None:
        if refusal := self._not_a_server_manager(interaction):
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

    @app_commands.command(name="chime", description="dann now and then answers a message nobody asked it about")
    @app_commands.describe(channel="Where", chance="Chance per message, such as 2% (50% at most; 0 turns it off)")
    async def chime(self, interaction: discord.Interaction, channel: app_commands.AppCommandChannel,
                    chance: app_commands.Range[str, 1, 10]) -> None:
        if refusal := self._not_a_server_manager(interaction):
            await tell(interaction, refusal)
            return
        if not self.bot.settings.read_messages:
            await tell(interaction, NO_INTENT)
            return
        try:
            share = parse_chance(chance)
            found, problem = self._channel_here(interaction, channel)
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

    @app_commands.command(name="forget", description="dann never says this phrase again, and unlearns it")
    @app_commands.describe(text="The phrase; case, accents, punctuation and spacing do not matter")
    async def forget(self, interaction: discord.Interaction, text: str) -> None:
        if not self.bot.is_owner(interaction.user.id):
            await tell(interaction, OWNER_ONLY)
            return
        try:
            added = self.bot.forget.add(text)
        except ForgetError as error:
            await tell(interaction, f"Could not forget that: {error}")
            return
        await tell(interaction, "Forgotten: it is never said from now on, and the next training run leaves out every "
                                "post holding it." if added else "That phrase was forgotten already.")


def spoken_text(content: str) -> str:
    """What dann said in a message, without the quote `/dann reply` puts above its answer, cut to
    what a forget phrase may hold."""
    said = " ".join(line for line in content.splitlines() if not line.startswith("> ")).strip()
    return said if len(said) <= MAX_PHRASE_CHARS else said[:MAX_PHRASE_CHARS].rsplit(" ", 1)[0]


async def addressee(message: discord.Message) -> int | None:
    """Whom one of dann's messages answered: the user of the slash command, or the author of the
    message it replies to."""
    if message.interaction_metadata is not None:
        return message.interaction_metadata.user.id
    reference = message.reference
    if reference is None or reference.message_id is None:
        return None
    if isinstance(reference.resolved, discord.Message):
        return reference.resolved.author.id
    try:
        return (await message.channel.fetch_message(reference.message_id)).author.id
    except discord.HTTPException:  # deleted since, or out of reach
        return None


def delete_and_forget(bot: Bot) -> app_commands.ContextMenu:
    async def delete_and_forget(interaction: discord.Interaction, message: discord.Message) -> None:
        if bot.user is None or message.author.id != bot.user.id:
            await tell(interaction, "This only works on dann's own messages.")
            return
        owner = bot.is_owner(interaction.user.id)
        if not owner and await addressee(message) != interaction.user.id:
            await tell(interaction, "Only dann's owner, or the person it was answering, can delete this.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            await message.delete()
        except discord.NotFound:
            pass  # someone was quicker; forgetting still makes sense
        except discord.HTTPException as error:
            await interaction.followup.send(f"Discord would not delete it ({error.text or error.status}).",
                                            ephemeral=True)
            return
        note = "Deleted."
        if owner and spoken_text(message.content):
            try:
                bot.forget.add(spoken_text(message.content))
                note = "Deleted and forgotten: dann never says it again, and the next training run unlearns it."
            except ForgetError as error:
                note = f"Deleted, but not forgotten: {error}"
        await interaction.followup.send(note, ephemeral=True)

    return app_commands.ContextMenu(name="Delete and forget", callback=delete_and_forget)
