"""Reply chains under dpytest, which keeps no message references of its own: `reply` fakes a
person's Discord reply as the gateway sends it, and `threaded` keeps the reference on each of the
bot's own replies, as Discord does."""

import discord
import discord.ext.test as dpytest
import pytest
from discord.ext.test import backend, factories, runner

REPLY = 19  # Discord's message type of a reply


async def reply(parent: discord.Message, content: str, member: discord.abc.User, *, ping: bool = False) -> discord.Message:
    """`member` replies to `parent` (with the reply's ping on or off) and the bot receives it."""
    channel = parent.channel
    data = factories.make_message_dict(channel, member, content=content, type=REPLY,
                                       mentions=[parent.author] if ping else [])
    data["message_reference"] = {"message_id": parent.id, "channel_id": channel.id, "guild_id": channel.guild.id}
    data["referenced_message"] = factories.dict_from_message(parent)
    if parent.reference is not None:  # Discord's copy of the message replied to has its own reference
        data["referenced_message"]["message_reference"] = parent.reference.to_dict()
    state = backend.get_state()
    state.parse_message_create(data)
    backend._cur_config.messages.setdefault(channel.id, []).append(data)  # what fetch_message finds
    await dpytest.run_all_events()
    return state._get_message(data["id"])


@pytest.fixture
def sent(monkeypatch):
    """The JSON payload of every message the bot sends, as Discord would receive it."""
    payloads = []
    real = discord.abc.handle_message_parameters

    def spy(*args, **kwargs):
        params = real(*args, **kwargs)
        payloads.append(params.payload)
        return params

    monkeypatch.setattr(discord.abc, "handle_message_parameters", spy)
    return payloads


@pytest.fixture
def threaded(sent, monkeypatch):
    """The bot's replies keep their reference to the message they answer. (dpytest hears of each
    message the bot sends through its own callback, which `connect` installs: this wraps it.)"""
    queue_it = runner._message_callback

    async def keep(message):
        reference = sent[-1].get("message_reference") if sent else None
        if reference:
            reference = {**reference, "channel_id": message.channel.id}
            message.reference = discord.MessageReference.with_state(backend.get_state(), reference)
            for stored in backend._cur_config.messages.get(message.channel.id, []):
                if stored["id"] == message.id:
                    stored["message_reference"] = reference
        await queue_it(message)

    monkeypatch.setattr(runner, "_message_callback", keep)
