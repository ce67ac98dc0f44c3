"""What the bot says around the voice's words, and how it fits Discord: the fixed sentences,
clipping to Discord's length, quoting, and the priming text taken from a message."""

import datetime
import math
import re

import discord

DISCORD_LIMIT = 2000  # Discord counts UTF-16 code units, not Python characters
NO_PINGS = discord.AllowedMentions.none()
STILL_LEARNING = "I'm still learning: no model has been trained yet. Ask me again once one is!"
SORRY = "Something went wrong while I was thinking. It has been logged."
BUSY = "⏳ Too many people are asking me at once. Try again in a few seconds."
QUOTE_CHARS = 300  # how much of the text being answered `/dann reply` quotes above its answer
# Discord markup that is not words: user, role and channel mentions; custom emoji become :name:.
MARKUP = re.compile(r"<(?:@[!&]?|#)\d+>")
CUSTOM_EMOJI = re.compile(r"<a?(:\w+:)\d+>")


def clip(text: str, limit: int = DISCORD_LIMIT) -> str:
    """The longest prefix of `text` that is at most `limit` UTF-16 code units (an emoji outside
    the BMP is two) without splitting a character."""
    if len(text) * 2 <= limit:  # fast path: no character is more than two units
        return text
    return text.encode("utf-16-le")[: 2 * limit].decode("utf-16-le", "ignore")


def prompt_text(content: str, max_chars: int) -> str:
    """What to prime a reply with: the message without mentions and markup, keeping its last
    `max_chars` characters (the end is what the model reads right before it answers)."""
    text = CUSTOM_EMOJI.sub(r"\1", MARKUP.sub("", content))
    text = " ".join(text.split())
    return text[-max_chars:] if max_chars else ""


def wait_notice(wait_s: float) -> str:
    return f"⏳ Give me {math.ceil(wait_s)} s."


def without_quote(content: str) -> str:
    """What dann said in one of its messages, without the quote `/dann reply` puts above its answer."""
    return " ".join(line for line in content.splitlines() if not line.startswith("> ")).strip()


def quote(text: str) -> str:
    """A member's text as a block quote, its markdown shown as typed (no headings, links or spoilers)."""
    text = text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"
    text = discord.utils.escape_markdown(text)
    return "\n".join("> " + line for line in text.splitlines() or [""])


def discord_time(moment: datetime.datetime) -> str:
    """A time every reader sees in their own zone, and how long ago it was."""
    return f"{discord.utils.format_dt(moment, 'f')} ({discord.utils.format_dt(moment, 'R')})"
