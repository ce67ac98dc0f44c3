"""The bot process: one generation service (bot.service) and its Discord front end (bot.discord_bot)."""

from bot.discord_bot import create_bot, run_bot

__all__ = ["create_bot", "run_bot"]
