"""Learning from Discord (DANN_LEARN_FROM_DISCORD=true): the person's messages reach the post store.

It stores the messages the person whose voice it is writes (DANN_VOICE_IDS, or the owners) in the
server channels dann is in, and nothing else: never a DM, anyone else's message, a bot's, a
webhook's, a system message or dann's own. Edits update the stored text and deletions delete it,
whether or not the message is still in discord.py's cache (the raw events). The next training run
learns from them (dann/state/posts.py).

    /dann learn channel on|off     an admin keeps a channel out of learning (or lets it back in)
    /dann backfill channel         an owner reads the person's past messages there, politely paced
"""

import asyncio
import logging

import discord
from discord import app_commands
from discord.ext import commands
from sqlalchemy import delete, select

from bot.commands import OWNER_ONLY, SERVERS_ONLY, DannCog, not_a_manager, subcommand, tell
from dann.state import StateError, tables, upsert
from dann.state.posts import PostStore, StoredPost
from trainer.exports.discord_package import strip_markup

log = logging.getLogger("dann.discord")
BACKFILL_PAUSE_S = 1.0  # between two pages of history: Discord's limits allow more, the server's people come first
BACKFILL_PAGE = 100
NOT_ON = ("Learning from Discord is off: dann's host sets DANN_LEARN_FROM_DISCORD=true (and switches on the "
          "Message Content intent in the Developer Portal) for it.")
KINDS = (discord.MessageType.default, discord.MessageType.reply)


class Learning(DannCog):
    """The listeners that store the person's messages, and /dann learn and /dann backfill."""

    def __init__(self, bot: commands.Bot):
        super().__init__(bot)
        self.posts = PostStore(bot.store)

    # --- whose messages ---------------------------------------------------------------------------

    def voices(self) -> set[int]:
        settings = self.bot.settings
        return set(settings.voice_ids or settings.owner_ids)

    def channel_off(self, channel_id: int) -> bool:
        with self.bot.store.read("read the learning channels from") as conn:
            return conn.execute(select(tables.learn_off.c.channel).where(
                tables.learn_off.c.channel == channel_id)).first() is not None

    def learns_from(self, message: discord.Message) -> bool:
        """Whether `message` is one of the person's, in a server channel dann may learn from."""
        return (self.bot.settings.learn_from_discord and message.guild is not None
                and self.bot.guild_allowed(message.guild.id) and message.author.id in self.voices()
                and not message.author.bot and message.webhook_id is None and message.type in KINDS
                and (self.bot.user is None or message.author.id != self.bot.user.id))

    @staticmethod
    def stored(message: discord.Message) -> StoredPost | None:
        text = strip_markup(message.content).strip()
        if not text:
            return None
        edited = message.edited_at.isoformat(timespec="seconds") if message.edited_at else None
        return StoredPost("discord", str(message.id), "reply" if message.type == discord.MessageType.reply else "post",
                          text, message.created_at.isoformat(timespec="seconds"), edited, str(message.author.id))

    async def store(self, messages: list[discord.Message]) -> int:
        found = [post for post in map(self.stored, messages) if post is not None]
        if not found:
            return 0
        try:
            added = await asyncio.to_thread(self.posts.add, found, "discord")
        except StateError as error:
            log.error("could not store %d of the person's message(s): %s", len(found), error)
            return 0
        return added.new + added.edited

    # --- the events -------------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if self.learns_from(message) and not await asyncio.to_thread(self.channel_off, message.channel.id):
            await self.store([message])

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        message = payload.message
        if self.learns_from(message) and not await asyncio.to_thread(self.channel_off, message.channel.id):
            await self.store([message])

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        await self.forget_ids([payload.message_id])

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        await self.forget_ids(list(payload.message_ids))

    async def forget_ids(self, ids: list[int]) -> None:
        try:
            await asyncio.to_thread(self.posts.delete, "discord", [str(i) for i in ids])
        except StateError as error:
            log.error("could not delete %d message(s) from the post store: %s", len(ids), error)

    # --- /dann learn and /dann backfill ---------------------------------------------------------------

    @subcommand(name="learn", description="keep a channel out of what dann learns from (or let it back in)")
    @app_commands.describe(channel="The channel", learn="on: dann learns the person's messages there; off: never")
    async def learn(self, interaction: discord.Interaction, channel: app_commands.AppCommandChannel,
                    learn: bool) -> None:
        if interaction.guild_id is None:
            await tell(interaction, SERVERS_ONLY)
            return
        if refusal := not_a_manager(self.bot, interaction):
            await tell(interaction, refusal)
            return
        with self.bot.store.write("change the learning channels in") as conn:
            if learn:
                conn.execute(delete(tables.learn_off).where(tables.learn_off.c.channel == channel.id))
            else:
                upsert(conn, tables.learn_off, {"channel": channel.id, "guild": interaction.guild_id})
        note = "" if self.bot.settings.learn_from_discord else f" ({NOT_ON})"
        await tell(interaction, (f"dann learns from the person's messages in <#{channel.id}>." if learn
                                 else f"dann will not learn from <#{channel.id}>.") + note)

    @subcommand(name="backfill", description="dann reads the person's past messages in a channel (owners)")
    @app_commands.describe(channel="The channel to read")
    async def backfill(self, interaction: discord.Interaction, channel: app_commands.AppCommandChannel) -> None:
        if not self.bot.is_dann_owner(interaction.user.id):
            await tell(interaction, OWNER_ONLY)
            return
        if not self.bot.settings.learn_from_discord:
            await tell(interaction, NOT_ON)
            return
        found = self.bot.get_channel(channel.id)
        if found is None or getattr(found, "guild", None) is None or self.channel_off(channel.id):
            await tell(interaction, "I can't learn from that channel: pick a server channel I am in that is not "
                                    "kept out with /dann learn.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        read = stored = 0
        page: list[discord.Message] = []
        try:
            async for message in found.history(limit=None):  # newest first
                read += 1
                if self.learns_from(message):
                    page.append(message)
                if read % BACKFILL_PAGE == 0:
                    stored += await self.store(page)
                    page = []
                    await asyncio.sleep(BACKFILL_PAUSE_S)
            stored += await self.store(page)
        except discord.Forbidden:
            await interaction.followup.send(f"Discord does not let me read the history of <#{channel.id}>.",
                                            ephemeral=True)
            return
        await interaction.followup.send(f"Read {read} message(s) in <#{channel.id}>: {stored} of the person's "
                                        "were new or edited, for the next training run.", ephemeral=True)
