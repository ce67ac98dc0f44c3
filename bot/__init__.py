"""The Discord front end (bot.discord_bot, one cog per feature in bot.cogs) over the shared generation
service (dann/serving)."""

from bot.discord_bot import create_bot, run_bot

__all__ = ["create_bot", "run_bot"]
