"""👍 and 👎 on dann's messages, counted for the model version that wrote them, across a restart."""

import asyncio
import threading
import time
from unittest.mock import MagicMock

import discord
import discord.ext.test as dpytest

from bot.feedback import Feedback, vote_of
from dann.state import Store
from tests.bot.helpers import connect, interaction, mention, settings_for, slash


def reaction(bot, message_id, emoji, user_id=42):
    payload = MagicMock(spec=discord.RawReactionActionEvent, message_id=message_id, user_id=user_id)
    payload.emoji = discord.PartialEmoji(name=emoji)
    return payload


async def deliver(bot, event, payload) -> None:
    """The bot receives a reaction event as the gateway delivers it, to whichever cog listens."""
    bot.dispatch(event, payload)
    await dpytest.run_all_events()


def test_votes_read_skin_tones_and_ignore_other_emoji():
    assert vote_of("👍") == vote_of("👍🏽") == "up" and vote_of("👎🏿") == "down"
    assert vote_of("❤️") is None


async def test_reactions_count_per_version_and_survive_a_restart(service):
    bot = await connect(settings_for(service.checkpoint_dir), service)
    try:
        await dpytest.message(f"{mention(bot)} hi")
        answer = dpytest.get_message()
        await deliver(bot, "raw_reaction_add", reaction(bot, answer.id, "👍"))
        await deliver(bot, "raw_reaction_add", reaction(bot, answer.id, "👍🏽", user_id=43))
        await deliver(bot, "raw_reaction_add", reaction(bot, answer.id, "👎", user_id=44))
        await deliver(bot, "raw_reaction_remove", reaction(bot, answer.id, "👎", user_id=44))
        await deliver(bot, "raw_reaction_add", reaction(bot, answer.id, "👎", user_id=bot.user.id))  # its own: no vote
        await deliver(bot, "raw_reaction_add", reaction(bot, 12345, "👎"))  # not one of its messages
        version = service.status()["version"]
        assert bot.feedback.of(version) == {"up": 2, "down": 0}
        assert Feedback(Store(f"sqlite:///{bot.forget.store.where}")).of(version) == {"up": 2, "down": 0}  # saved

        inter = interaction()
        await slash(bot, "status", inter)
        assert "Reactions to this version's messages: 👍 2, 👎 0." in inter.response.send_message.await_args.args[0]
    finally:
        await dpytest.empty_queue()


async def test_status_shows_the_web_game_s_fool_rate_for_the_served_version(service, tmp_path):
    from dann.serving.votes import Votes

    bot = await connect(settings_for(service.checkpoint_dir), service)
    votes = Votes(Store(f"sqlite:///{bot.forget.store.where}"))  # as the web page writes them, in its own process
    try:
        inter = interaction()
        await slash(bot, "status", inter)
        assert "Real or dann?" not in inter.response.send_message.await_args.args[0]  # no game, no line
        version = service.status()["version"]
        for fooled in (True, False, False, True, False):
            votes.add(version, fooled)
        votes.add(version + 1, True)  # another version's vote does not count for this one
        inter = interaction()
        await slash(bot, "status", inter)
        assert ("Real or dann?: it fooled 2 of 5 votes on this version (40%, 95% interval 12% to 77%"
                in inter.response.send_message.await_args.args[0])
    finally:
        await dpytest.empty_queue()


async def test_a_reaction_is_stored_without_blocking_the_event_loop(service):
    bot = await connect(settings_for(service.checkpoint_dir), service)
    try:
        await dpytest.message(f"{mention(bot)} hi")
        answer = dpytest.get_message()
        # Another process holds the database's write lock: the reaction's write must wait for it.
        other, held, release = Store(f"sqlite:///{bot.forget.store.where}"), threading.Event(), threading.Event()

        def hold():
            with other.write():
                held.set()
                release.wait(timeout=30)

        holder = threading.Thread(target=hold)
        holder.start()
        await asyncio.to_thread(held.wait, 30)
        started = time.monotonic()
        bot.dispatch("raw_reaction_add", reaction(bot, answer.id, "👍"))
        await asyncio.sleep(0.05)  # the loop runs on while the write waits (blocked, it would wait out the lock)
        assert time.monotonic() - started < 5
        version = service.status()["version"]
        assert bot.feedback.of(version) == {"up": 0, "down": 0}  # not yet: the lock is still held
        release.set()
        await dpytest.run_all_events()
        await asyncio.to_thread(holder.join, 30)
        while bot.feedback.of(version)["up"] == 0 and time.monotonic() - started < 10:
            await asyncio.sleep(0.01)  # the worker thread commits once the lock is free
        assert bot.feedback.of(version) == {"up": 1, "down": 0}
    finally:
        await dpytest.empty_queue()
