"""Chime-ins: opt-in per channel, only with the Message Content intent, never on bots or itself or
past a chain's cap, at most once per gap."""

import discord.ext.test as dpytest
from discord.ext.test import backend, factories

from tests.bot.conftest import reply
from tests.bot.helpers import connect, interaction, mention, said, settings_for, slash
from tests.conftest import Clock


def admin_of(config):
    return interaction(user_id=config.members[1].id, channel_id=config.channels[0].id, guild_id=config.guilds[0].id,
                       manage_guild=True)


async def test_without_the_intent_the_command_refuses_and_says_why(service):
    bot = await connect(settings_for(service.checkpoint_dir), service)
    assert not bot.intents.message_content  # the privileged intent is not even asked for
    config = dpytest.get_config()
    inter = admin_of(config)
    await slash(bot, "chime", inter, channel=config.channels[0], chance="2%")
    assert "Message Content intent" in said(inter) and "DANN_READ_MESSAGES=true" in said(inter)
    assert bot.presence.chime_of(config.channels[0].id) is None

    # Even a channel opted in by hand (a file from a bot that had the intent) gets no chime-in.
    bot.presence.set_chime(config.channels[0].id, config.guilds[0].id, 0.5)
    bot.get_cog("Conversation").chimes.draw = lambda: 0.0
    await dpytest.message("anyone around?")
    assert dpytest.verify().message().nothing()


async def test_chance_100_percent_and_a_10_minute_gap_give_one_chime_in_20_messages_in_5_minutes(service, sent):
    bot = await connect(settings_for(service.checkpoint_dir, read_messages=True, chime_gap_s=600), service)
    assert bot.intents.message_content
    config = dpytest.get_config()
    channel, guild = config.channels[0], config.guilds[0]
    bot.get_cog("Conversation").chimes.clock = clock = Clock(1000.0)
    bot.presence.set_chime(channel.id, guild.id, 1.0)  # 100 %, past what /dann chime allows, to leave no luck in it

    messages = []
    for i in range(20):
        messages.append(await dpytest.message(f"message number {i}", member=config.members[i % 2]))
        clock.now += 15  # 20 messages in 5 minutes
    assert dpytest.get_message().author == bot.user
    assert dpytest.verify().message().nothing()  # one, not twenty
    assert len(sent) == 1 and sent[0]["message_reference"]["message_id"] == messages[0].id  # an answer to the first

    clock.now += 600  # the gap is over
    await dpytest.message("and now?")
    assert dpytest.get_message().author == bot.user
    await dpytest.empty_queue()


async def test_never_on_bots_itself_or_past_the_depth_cap(service, threaded):
    bot = await connect(settings_for(service.checkpoint_dir, read_messages=True, chime_gap_s=0,
                                     max_thread_depth=1), service)
    config = dpytest.get_config()
    channel, guild = config.channels[0], config.guilds[0]
    bot.presence.set_chime(channel.id, guild.id, 1.0)

    other_bot = backend.get_state().store_user(factories.make_user_dict("otherbot", 1, None, bot=True))
    backend.make_member(other_bot, guild)
    await dpytest.message("beep boop", member=guild.get_member(other_bot.id))
    assert dpytest.verify().message().nothing()

    await dpytest.message(f"{mention(bot)} hi", member=config.members[0])
    answer = dpytest.get_message()  # its own message chimes nothing in
    assert dpytest.verify().message().nothing()

    # Someone else replies to dann's message's reply chain: one dann message in it, the cap.
    theirs = await reply(answer, "lol", config.members[1])
    assert dpytest.verify().message().nothing()  # addressed to dann, but the chain is at its cap
    await reply(theirs, "right?", config.members[0])
    assert dpytest.verify().message().nothing()  # not addressed, and no chime-in past the cap either


async def test_admins_set_and_clear_it_with_one_line_for_each_mistake(service):
    bot = await connect(settings_for(service.checkpoint_dir, read_messages=True), service)
    config = dpytest.get_config()
    channel = config.channels[0]

    async def chime(chance, where=channel, inter=None):
        inter = inter or admin_of(config)
        await slash(bot, "chime", inter, channel=where, chance=chance)
        return said(inter)

    assert "too high: the most is 50%" in await chime("100%")
    assert "not a chance" in await chime("often")

    class Elsewhere:
        id = 424242

    assert "can't see that channel" in await chime("2%", where=Elsewhere())
    member = interaction(user_id=config.members[0].id, channel_id=channel.id, guild_id=config.guilds[0].id)
    assert "Manage Server" in await chime("2%", inter=member)
    assert bot.presence.chime_of(channel.id) is None

    assert "on 2% of the messages, at most once every 10m" in await chime("2%")
    assert bot.presence.chime_of(channel.id)["chance"] == 0.02
    inter = admin_of(config)
    await slash(bot, "schedules", inter)
    assert f"chimes in in <#{channel.id}> with a chance of 2%" in said(inter)
    assert "No more chime-ins" in await chime("0")
    assert bot.presence.chime_of(channel.id) is None
