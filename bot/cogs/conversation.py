"""Conversation: dann answering people, asked or not.

- Mentions, replies to one of dann's messages (even with the reply's ping off) and DMs get an
  answer primed with the reply chain above them (chain.py); a chain already holding
  DANN_MAX_THREAD_DEPTH of dann's messages gets none.
- In a channel an admin opted in, a message nobody addressed to dann now and then gets one too
  (chime.py), only with DANN_READ_MESSAGES.
- /dann post and /dann reply speak on request.
- The message context menu "Why did dann say this?" shows, to the asker only, the real posts one of
  dann's messages is closest to and the longest run of words it shares with any (dann/voice/why.py).

It answers people only: messages from bots (itself included), webhooks and the system are
ignored, so two bots cannot talk to each other forever. A mention means `bot.user in
message.mentions` (or its own role); `ClientUser.mentioned_in` is also true for @everyone and
@here. Every answer goes through the bot's flood control and refusal rules.
"""

import datetime
import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.chain import Chain, chain_above, parent_now
from bot.chime import Chimes
from bot.commands import DannCog, subcommand, tell
from bot.text import NO_PINGS, clip, prompt_text, quote, wait_notice, without_quote
from dann.schedule import is_quiet
from lstm.errors import DannError

log = logging.getLogger("dann.discord")

# An interaction's token, and with it the "thinking…" message, lasts 15 minutes; an answer the
# model finishes later could never be sent, so it is dropped before it is sampled.
INTERACTION_LIFETIME = datetime.timedelta(minutes=15)


WHY_MENU = "Why did dann say this?"
NOT_DANNS = "That message is not dann's: only what dann wrote can be traced to the posts it learned from."


def time_left(interaction: discord.Interaction) -> float:
    """Seconds left to answer this interaction, with a margin for sending the answer (0 or less:
    too late already)."""
    left = interaction.created_at + INTERACTION_LIFETIME - discord.utils.utcnow()
    return left.total_seconds() - 10


class Conversation(DannCog):
    """Mentions, replies and DMs (`on_message`), chime-ins (`maybe_chime`, with each channel's dice
    and gap in `chimes`), and /dann post and /dann reply. What it says comes from the bot's
    `speak`, and each message it sends is noted with the bot's `remember`."""

    def __init__(self, bot: commands.Bot):
        super().__init__(bot)
        self.chimes = Chimes(bot.settings.chime_gap_s)
        # A context menu cannot be declared in a class; a bound method as its callback can.
        self.why_menu = app_commands.ContextMenu(name=WHY_MENU, callback=self.why_said)

    async def cog_load(self) -> None:
        await super().cog_load()
        self.bot.tree.add_command(self.why_menu)

    async def cog_unload(self) -> None:
        await super().cog_unload()
        self.bot.tree.remove_command(self.why_menu.name, type=self.why_menu.type)

    # --- who is talking to dann ------------------------------------------------------------------

    def from_a_person(self, message: discord.Message) -> bool:
        """Whether a person wrote this, as words: not a bot (itself included), a webhook or a system message."""
        if message.author.bot or message.webhook_id is not None or message.author == self.bot.user:
            return False
        # Joins, pins, boosts: system messages are nobody talking to dann.
        return message.type in (discord.MessageType.default, discord.MessageType.reply)

    def wants(self, message: discord.Message) -> bool:
        """Whether this message asks dann for a reply: a person mentioning it, replying to one of
        its messages (even with the reply's ping off), or a DM."""
        if not self.from_a_person(message):
            return False
        if isinstance(message.channel, discord.DMChannel):
            return True
        me = self.bot.user
        own_role = message.guild.self_role if message.guild else None  # picked from @-autocomplete
        if me in message.mentions or (own_role is not None and own_role in message.role_mentions):
            return True
        above = parent_now(message)
        return above is not None and me is not None and above.author.id == me.id

    async def chain_of(self, message: discord.Message) -> Chain:
        settings = self.bot.settings
        return await chain_above(message, self.bot.user, max_messages=settings.thread_messages,
                                 max_chars=settings.thread_chars, depth_cap=settings.max_thread_depth)

    def context_of(self, message: discord.Message, chain: Chain) -> str | tuple[str, ...] | None:
        """What primes the answer to `message`: the chain above it, then its own text."""
        own = prompt_text(message.content, self.bot.settings.max_prompt_chars)
        texts = chain.texts + ((own,) if own else ())
        return texts if len(texts) > 1 else (texts[0] if texts else None)

    def at_cap(self, message: discord.Message, chain: Chain) -> bool:
        if chain.dann_messages < self.bot.settings.max_thread_depth:
            return False
        log.info("not answering message %s: its reply chain holds %d of dann's messages already (DANN_MAX_THREAD_DEPTH)",
                 message.id, chain.dann_messages)
        return True

    # --- mentions, replies and DMs ----------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if not self.wants(message):
            if self.from_a_person(message):
                await self.maybe_chime(message)
            return
        bot = self.bot
        guild_id = message.guild.id if message.guild else None
        if bot.refusal(message.author.id, guild_id):
            return  # in silence: a notice to every mention would be the noise a pause is there to stop
        # The cooldown first: walking a reply chain costs up to DANN_MAX_THREAD_DEPTH fetches.
        wait = bot.cooldown.try_acquire(message.author.id, message.channel.id, guild_id)
        try:
            if wait:
                if bot.cooldown.should_notice(message.author.id, message.channel.id, wait):
                    await self.answer(message, wait_notice(wait), delete_after=wait)
                return
            chain = await self.chain_of(message)
            if self.at_cap(message, chain):
                return
            async with message.channel.typing():
                text, version = await bot.speak("reply", context=self.context_of(message, chain),
                                                client=str(message.author.id))
            await bot.remember(await self.answer(message, text), version)
        except discord.Forbidden:  # a channel where it may read but not type or speak
            log.warning("no permission to send messages in channel %s", message.channel.id)
        finally:
            if not wait:
                bot.cooldown.release(message.author.id)

    # --- chime-ins ----------------------------------------------------------------------------------

    async def maybe_chime(self, message: discord.Message) -> None:
        """Answer a message nobody addressed to dann, if its channel is opted in and the dice say so."""
        bot = self.bot
        if not bot.settings.read_messages or message.guild is None or bot.user is None:
            return
        entry = bot.presence.chime_of(message.channel.id)
        guild_id = message.guild.id
        if entry is None or entry.get("guild") != guild_id or not bot.guild_allowed(guild_id):
            return
        if bot.pause_of(guild_id) is not None or is_quiet(bot.presence.quiet_of(guild_id),
                                                            datetime.datetime.now(datetime.UTC)):
            return
        if not self.chimes.due(message.channel.id, entry["chance"]):
            return  # the dice first: most messages get no chime-in, and need no chain walk
        chain = await self.chain_of(message)
        if self.at_cap(message, chain):
            return
        # dann itself is the asker: one chime-in in flight at a time, within the channel's and the
        # server's limits like any other generation, and silent when they hold.
        if bot.cooldown.try_acquire(bot.user.id, message.channel.id, guild_id):
            return
        try:
            text, version = await bot.speak("reply", context=self.context_of(message, chain),
                                            client=f"chime:{message.channel.id}")
            if version is not None:  # no model, or busy: nobody asked, so nothing is said
                await bot.remember(await self.answer(message, text), version)
        except discord.Forbidden:
            log.warning("no permission to chime in in channel %s", message.channel.id)
        finally:
            bot.cooldown.release(bot.user.id)

    async def answer(self, message: discord.Message, text: str, **options) -> discord.Message:
        # A reference that survives the original being deleted while the model was sampling.
        reference = message.to_reference(fail_if_not_exists=False)
        return await message.channel.send(clip(text), reference=reference, allowed_mentions=NO_PINGS, **options)

    # --- /dann post and /dann reply -----------------------------------------------------------------

    @subcommand(name="post", description="dann posts something new")
    @app_commands.describe(temp="How adventurous, 0.05 to 2.0: low is safe and repetitive, high is wild")
    async def post(self, interaction: discord.Interaction,
                   temp: app_commands.Range[float, 0.05, 2.0] | None = None) -> None:
        if await self.refused(interaction):
            return
        try:
            await interaction.response.defer(thinking=True)  # Discord wants an answer within 3 s
            text, version = await self.bot.speak("post", temperature=temp, client=str(interaction.user.id),
                                                 deadline_s=time_left(interaction))
            await self.bot.remember(await interaction.followup.send(clip(text), allowed_mentions=NO_PINGS, wait=True),
                              version)
        finally:
            self.bot.cooldown.release(interaction.user.id)

    @subcommand(name="reply", description="dann replies to a text you give it")
    @app_commands.describe(text="What dann should reply to", temp="How adventurous, 0.05 to 2.0")
    async def reply(self, interaction: discord.Interaction, text: app_commands.Range[str, 1, 1000],
                    temp: app_commands.Range[float, 0.05, 2.0] | None = None) -> None:
        if await self.refused(interaction):
            return
        try:
            await interaction.response.defer(thinking=True)
            context = prompt_text(text, self.bot.settings.max_prompt_chars) or None
            answer, version = await self.bot.speak("reply", temperature=temp, context=context,
                                                   client=str(interaction.user.id), deadline_s=time_left(interaction))
            if version is None:  # refused (a blocked or forgotten term), busy or still learning: no quote
                await interaction.followup.send(clip(answer), allowed_mentions=NO_PINGS)
                return
            await self.bot.remember(await interaction.followup.send(clip(f"{quote(text)}\n{answer}"),
                                                              allowed_mentions=NO_PINGS, wait=True), version)
        finally:
            self.bot.cooldown.release(interaction.user.id)

    # --- "Why did dann say this?" ------------------------------------------------------------------

    async def why_said(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """The message context menu: the real posts one of dann's messages is closest to, for the asker only."""
        me = self.bot.user
        if me is None or message.author.id != me.id:
            await tell(interaction, NOT_DANNS)
            return
        if refusal := self.bot.refusal(interaction.user.id, interaction.guild_id):
            await tell(interaction, refusal)
            return
        try:
            explained = await self.bot.service.why(without_quote(message.content))
        except DannError as error:  # no model yet, or a version published without its posts
            await tell(interaction, error.for_public())
            return
        await tell(interaction, why_text(explained))


def why_text(explained) -> str:
    """The answer to "Why did dann say this?", as one Discord message."""
    lines = [explained.summary()]
    if explained.posts:
        lines.append("The real posts it is closest to:")
        for post in explained.posts:
            lines.append(quote(post["text"]))
            lines.append(f"-# shares: {discord.utils.escape_markdown(', '.join(post['shared']))}")
    else:
        lines.append("It shares no rare word with any post dann may show.")
    return clip("\n".join(lines))
