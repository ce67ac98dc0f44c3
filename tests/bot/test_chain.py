"""Conversations: a reply to dann's message addresses it, the chain above primes the answer, and
a chain holding DANN_MAX_THREAD_DEPTH of dann's messages is answered no more."""

import discord.ext.test as dpytest
import pytest

from tests.bot.conftest import reply
from tests.bot.helpers import connect, mention, settings_for


@pytest.mark.slow
async def test_a_reply_to_dann_without_a_mention_is_answered_primed_with_the_chain(service, asked, sent, threaded):
    bot = await connect(settings_for(service.checkpoint_dir), service)
    member = dpytest.get_config().members[0]
    await dpytest.message(f"{mention(bot)} hello there", member=member)
    first = dpytest.get_message()

    answer_to = await reply(first, "what about you", member, ping=False)
    second = dpytest.get_message()
    assert dpytest.verify().message().nothing()
    assert asked[-1].mode == "reply"
    assert asked[-1].context == ("hello there", first.content, "what about you")  # oldest first, then the reply
    assert sent[-1]["message_reference"]["message_id"] == answer_to.id

    # A reply whose text Discord withheld (its ping off, no Message Content intent) is answered
    # from the chain alone.
    await reply(second, "", member)
    dpytest.get_message()
    assert asked[-1].context == ("hello there", first.content, "what about you", second.content)

    # A reply to someone else's message is nobody asking dann.
    other = dpytest.get_config().members[1]
    await reply(answer_to, "i agree with you", other)
    assert dpytest.verify().message().nothing()
    await dpytest.empty_queue()


async def test_the_chain_that_primes_is_bounded_in_messages_and_characters(service, asked, threaded):
    bot = await connect(settings_for(service.checkpoint_dir, thread_messages=2, thread_chars=1000), service)
    member = dpytest.get_config().members[0]
    await dpytest.message(f"{mention(bot)} one", member=member)
    message = dpytest.get_message()
    for word in ("two", "three"):
        message = await reply(message, word, member)
        message = dpytest.get_message()
    await reply(message, "four", member)
    dpytest.get_message()
    assert asked[-1].context[-1] == "four"
    assert len(asked[-1].context) == 3  # two messages above it, the nearest
    assert asked[-1].context[-2] == message.content

    bot.settings = bot.settings.model_copy(update={"thread_messages": 6, "thread_chars": 3})
    await reply(message, "five", member)
    dpytest.get_message()
    assert asked[-1].context[-1] == "five"
    assert sum(len(text) for text in asked[-1].context[:-1]) <= 3
    await dpytest.empty_queue()


@pytest.mark.slow
async def test_the_seventh_dann_message_in_one_chain_never_happens(service, threaded):
    bot = await connect(settings_for(service.checkpoint_dir), service)
    assert bot.settings.max_thread_depth == 6
    member = dpytest.get_config().members[0]
    await dpytest.message(f"{mention(bot)} let's talk", member=member)
    dann_messages = [dpytest.get_message()]
    for turn in range(10):
        # The reply's ping on or off, alternately: a mention inside the chain is capped as well.
        await reply(dann_messages[-1], f"and then {turn}", member, ping=turn % 2 == 0)
        if dpytest.verify().message().nothing():
            break
        dann_messages.append(dpytest.get_message())
    assert len(dann_messages) == 6
    assert dpytest.verify().message().nothing()

    # The cap is per chain: a new mention starts a new conversation.
    await dpytest.message(f"{mention(bot)} new topic", member=member)
    assert dpytest.get_message().author == bot.user
    await dpytest.empty_queue()
