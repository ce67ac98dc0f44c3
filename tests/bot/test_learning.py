"""Learning from Discord (bot/cogs/learning.py) through dpytest: only the person's own messages in
server channels reach the post store, with their edits and deletions."""

import discord.ext.test as dpytest
import pytest
from discord.ext.test import backend, factories

from dann.state import store_beside
from dann.state.posts import PostStore
from tests.bot.helpers import connect, interaction, said, settings_for, slash


@pytest.fixture
async def learning(service):
    """A bot learning the first member's messages, and that member, another member, and the store."""
    bot = await connect(settings_for(service.checkpoint_dir, learn_from_discord=True), service, members=3)
    person, other = dpytest.get_config().members[:2]
    bot.settings = bot.settings.model_copy(update={"voice_ids": [person.id], "owner_ids": [other.id]})
    yield bot, person, other, PostStore(store_beside(service.checkpoint_dir))
    await dpytest.empty_queue()


def texts(posts) -> list[str]:
    return [p.text for p in posts.live()]


async def test_only_the_persons_messages_in_server_channels_are_stored(learning):
    bot, person, other, posts = learning
    stored = await dpytest.message("my own words <:pepe:123> here", member=person)
    await dpytest.message("someone else's words", member=other)
    other_bot = backend.get_state().store_user(factories.make_user_dict("otherbot", 1, None, bot=True))
    backend.make_member(other_bot, bot.guilds[0])
    await dpytest.message("a bot's words", member=bot.guilds[0].get_member(other_bot.id))
    dm = await person.create_dm()
    await dpytest.message("a private message", channel=dm, member=person)
    await dpytest.empty_queue()
    assert texts(posts) == ["my own words :pepe: here"]
    [post] = posts.live()
    assert (post.platform, post.post_id, post.account, post.source) == ("discord", str(stored.id), str(person.id),
                                                                        "discord")
    # dann's own message (it answers a mention) is never stored, even with its id among the voices.
    bot.settings = bot.settings.model_copy(update={"voice_ids": [person.id, bot.user.id]})
    await dpytest.message(f"<@{bot.user.id}> say something", member=other)
    await dpytest.empty_queue()
    assert texts(posts) == ["my own words :pepe: here"]


async def test_an_edit_and_a_deletion_are_applied(learning):
    bot, person, _, posts = learning
    first = await dpytest.message("first version", member=person)
    second = await dpytest.message("to be deleted", member=person)
    third = await dpytest.message("deleted in bulk", member=person)
    data = factories.dict_from_message(first)
    data.update(content="second version", edited_timestamp="2026-12-01T10:00:00+00:00",
                channel_id=str(first.channel.id), guild_id=str(first.guild.id),
                type=0)  # as the gateway sends it: dpytest's dict holds the enum
    backend.get_state().parse_message_update(data)  # the gateway's MESSAGE_UPDATE
    await dpytest.run_all_events()
    backend.delete_message(second)
    backend.get_state().parse_message_delete_bulk({"ids": [str(third.id)], "channel_id": str(third.channel.id),
                                                   "guild_id": str(third.guild.id)})
    await dpytest.run_all_events()
    assert texts(posts) == ["second version"] and posts.live()[0].edited_at is not None


async def test_a_channel_turned_off_is_not_read(learning):
    bot, person, other, posts = learning
    channel = dpytest.get_config().channels[0]
    refused = interaction(user_id=person.id, guild_id=bot.guilds[0].id)
    await slash(bot, "learn", refused, channel=channel, learn=False)
    assert "Manage Server" in said(refused) or "owner" in said(refused).lower()
    admin = interaction(user_id=other.id, guild_id=bot.guilds[0].id)
    await slash(bot, "learn", admin, channel=channel, learn=False)
    assert said(admin) == f"dann will not learn from <#{channel.id}>."
    await dpytest.message("not to be learned", member=person)
    assert texts(posts) == []
    await slash(bot, "learn", interaction(user_id=other.id, guild_id=bot.guilds[0].id), channel=channel, learn=True)
    await dpytest.message("learned again", member=person)
    assert texts(posts) == ["learned again"]


async def test_backfill_reads_the_persons_past_messages_for_an_owner_only(learning, monkeypatch):
    bot, person, other, posts = learning
    bot.settings = bot.settings.model_copy(update={"learn_from_discord": False})
    for text in ("older words", "someone's reply"):
        await dpytest.message(text, member=person if text == "older words" else other)
    bot.settings = bot.settings.model_copy(update={"learn_from_discord": True})
    assert texts(posts) == []
    channel = dpytest.get_config().channels[0]
    stranger = interaction(user_id=person.id, guild_id=bot.guilds[0].id)
    await slash(bot, "backfill", stranger, channel=channel)
    assert said(stranger).startswith("Only dann's owner")
    owner = interaction(user_id=other.id, guild_id=bot.guilds[0].id)
    await slash(bot, "backfill", owner, channel=channel)
    assert texts(posts) == ["older words"]
    assert "1 of the person's were new or edited" in owner.followup.send.await_args.args[0]
