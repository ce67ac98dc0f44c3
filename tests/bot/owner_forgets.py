"""A bot process of the split-deployment tests: `python -m tests.bot.owner_forgets PHRASE` builds
the bot from this process's DANN_* settings (its state database included), connects it to dpytest's
fake Discord, has its owner run `/dann forget PHRASE`, and prints what the bot answered."""

import asyncio
import sys

import discord.ext.test as dpytest

from dann.settings import DiscordSettings, load_settings
from tests.bot.helpers import connect, interaction, said, slash


async def owner_forgets(phrase: str) -> str:
    bot = await connect(load_settings(DiscordSettings), service=None)  # the bot makes its own service
    try:
        owner = dpytest.get_config().members[0]
        bot.settings = bot.settings.model_copy(update={"owner_ids": [owner.id]})
        inter = interaction(user_id=owner.id, guild_id=dpytest.get_config().guilds[0].id)
        await slash(bot, "forget", inter, text=phrase)
        return said(inter)
    finally:
        await bot.service.stop()


if __name__ == "__main__":
    print(asyncio.run(owner_forgets(sys.argv[1])))
