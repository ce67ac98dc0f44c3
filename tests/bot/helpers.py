"""A bot wired to dpytest's fake Discord, and the mocked interactions its slash commands receive."""

import asyncio
from unittest.mock import AsyncMock, MagicMock

import discord
import discord.ext.test as dpytest

from bot import create_bot
from dann.settings import Settings
from tests.dann.serving import MAX_CHARS


def settings_for(directory, **overrides) -> Settings:
    options = {"checkpoint_dir": directory, "temperature": 0.05, "max_chars": MAX_CHARS, "reload_poll_s": 0.05,
               "user_cooldown_s": 0, "channel_cooldown_s": 0}
    return Settings(_env_file=None, **{**options, **overrides})


async def connect(settings: Settings, service, members: int = 2) -> discord.ext.commands.Bot:
    """A bot wired to dpytest's fake Discord: one server, one channel, `members` members besides the bot."""
    bot = create_bot(settings, service=service)
    # dpytest finds the members it invents through the member cache, which the bot's intents (no
    # privileged members intent) leave off. Its fake server needs the cache; the real bot does not.
    bot._connection._intents.members = True
    bot._connection.member_cache_flags = discord.MemberCacheFlags.from_intents(bot._connection._intents)
    await bot._async_setup_hook()
    await bot.setup_hook()  # what a login runs: the cogs, and with them the commands, are added here
    dpytest.configure(bot, members=members)
    bot._connection.loop = asyncio.get_running_loop()  # dpytest's state has no loop; typing() needs one
    return bot


def mention(bot) -> str:
    return f"<@{bot.user.id}>"


def interaction(user_id=1, channel_id=2, guild_id=5, manage_guild=False):
    """What a slash command callback receives, with Discord's side mocked. guild_id None: a DM."""
    inter = MagicMock(spec=discord.Interaction)
    inter.user.id, inter.channel_id, inter.guild_id = user_id, channel_id, guild_id
    inter.created_at = discord.utils.utcnow()
    inter.permissions = discord.Permissions(manage_guild=manage_guild)
    inter.response = AsyncMock()
    inter.followup = AsyncMock()
    return inter


def dann(bot):
    return bot.tree.get_command("dann")


async def slash(bot, name: str, inter, **options) -> None:
    """`/dann <name>` run on `inter` as discord.py runs it once its checks pass: the handler, with
    the cog that holds it as `self`."""
    command = dann(bot).get_command(name)
    await command.callback(command.binding, inter, **options)


def said(inter) -> str:
    """What the bot answered an interaction, privately or not."""
    if inter.response.send_message.await_count:
        return inter.response.send_message.await_args.args[0]
    return inter.followup.send.await_args.args[0]
