"""👍 and 👎 on dann's messages, counted for the model version that wrote them, across a restart."""

from unittest.mock import MagicMock

import discord
import discord.ext.test as dpytest

from bot.feedback import Feedback, vote_of
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
        assert Feedback(service.checkpoint_dir).of(version) == {"up": 2, "down": 0}  # on disk

        inter = interaction()
        await slash(bot, "status", inter)
        assert "Reactions to this version's messages: 👍 2, 👎 0." in inter.response.send_message.await_args.args[0]
    finally:
        await dpytest.empty_queue()


async def test_status_shows_the_web_game_s_fool_rate_for_the_served_version(service, tmp_path):
    from dann.serving.votes import Votes

    votes = Votes(tmp_path / "votes.json")
    bot = await connect(settings_for(service.checkpoint_dir, game_file=tmp_path / "votes.json"), service)
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
