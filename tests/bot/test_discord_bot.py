"""The Discord front end, driven through real discord.py objects with no network: dpytest for
messages, a mocked Interaction for the slash commands (dpytest has no interactions)."""

import datetime
import re
from unittest.mock import AsyncMock, MagicMock

import discord
import discord.ext.test as dpytest
import pytest
from discord import AppCommandOptionType
from discord.ext.test import backend, callbacks, factories

from bot import create_bot, run_bot
from bot.text import BUSY, STILL_LEARNING, clip, prompt_text
from dann.serving.service import Generation, GenerationService
from dann.state import store_beside
from dann.voice.forget import ForgetList
from lstm.errors import DannError
from tests.bot.helpers import connect, dann, interaction, mention, settings_for, slash
from tests.dann.serving import MAX_CHARS, eventually, publish

NO_PINGS = {"parse": []}  # AllowedMentions.none() as sent to Discord: no @everyone, users, roles or reply ping


@pytest.fixture
async def bot(service):
    bot = await connect(settings_for(service.checkpoint_dir), service)
    yield bot
    await dpytest.empty_queue()


# --- mentions ----------------------------------------------------------------------------------


@pytest.fixture
def typing():
    """The channels the bot showed the typing indicator in."""
    channels = []

    async def typed(channel):
        channels.append(channel)

    callbacks.set_callback(typed, "send_typing")
    yield channels
    callbacks.remove_callback("send_typing")


async def test_a_mention_gets_one_reply_that_cannot_ping(bot, service, sent, typing, monkeypatch):
    asked_for = []
    real = service.generate

    async def generate(request, **_):
        asked_for.append(request)
        generation = await real(request)
        asked_for.append(generation.texts[0])
        return generation

    monkeypatch.setattr(service, "generate", generate)
    asked = await dpytest.message(f"{mention(bot)} good morning @everyone")

    reply = dpytest.get_message()
    assert dpytest.verify().message().nothing()  # exactly one
    request, text = asked_for
    assert request.mode == "reply" and request.context == "good morning @everyone"  # primed, minus the mention
    assert reply.content == text != ""
    assert len(sent) == 1
    assert sent[0]["allowed_mentions"] == NO_PINGS
    assert sent[0]["message_reference"]["message_id"] == asked.id
    assert typing == [asked.channel]  # the typing indicator showed while the model sampled


async def test_a_bare_mention_gets_a_reply_and_a_dm_only_from_an_owner_or_with_dms_on(bot):
    await dpytest.message(mention(bot))
    assert dpytest.verify().message().content("lol same")

    member = dpytest.get_config().members[0]
    dm = await member.create_dm()
    await dpytest.message("hi there", channel=dm, member=member)
    assert dpytest.verify().message().nothing()  # DMs are answered only for owners by default
    bot.settings = bot.settings.model_copy(update={"owner_ids": [member.id]})
    await dpytest.message("hi there", channel=dm, member=member)
    assert dpytest.get_message().channel == dm
    bot.settings = bot.settings.model_copy(update={"owner_ids": [], "answer_dms": True})
    await dpytest.message("hi again", channel=dm, member=member)
    assert dpytest.get_message().channel == dm


async def test_the_reply_fits_discords_limit_in_utf16_units(tmp_path):
    class Talkative:
        async def generate(self, request, **_):
            return Generation(["😀" * 1500], 1, 0.0)  # 3000 UTF-16 units

    bot = await connect(settings_for(tmp_path), Talkative())
    await dpytest.message(mention(bot))
    content = dpytest.get_message().content
    assert len(content.encode("utf-16-le")) // 2 == 2000 and content == "😀" * 1000
    await dpytest.empty_queue()


async def deliver(author, content: str, **fields) -> None:
    """A message as the gateway would send it, with fields dpytest.message cannot set."""
    channel = dpytest.get_config().channels[0]
    data = factories.make_message_dict(channel, author, content=content, guild_id=channel.guild.id, **fields)
    backend.get_state().parse_message_create(data)
    await dpytest.run_all_events()


async def test_no_reply_without_a_mention_or_to_bots_and_webhooks(bot):
    guild, person = bot.guilds[0], dpytest.get_config().members[0]
    await dpytest.message("good morning everyone")
    await deliver(person, "@everyone @here wake up", mention_everyone=True)  # mentioned_in() would say yes

    other_bot = backend.get_state().store_user(factories.make_user_dict("otherbot", 1, None, bot=True))
    backend.make_member(other_bot, guild)
    await dpytest.message(f"{mention(bot)} hello fellow bot", member=guild.get_member(other_bot.id))
    await deliver(person, f"{mention(bot)} from a webhook", mentions=[guild.me], webhook_id=factories.make_id())

    assert dpytest.verify().message().nothing()
    await dpytest.message(f"{mention(bot)} and a person")  # while people still get their replies
    assert dpytest.get_message().author.id == bot.user.id


async def test_the_cooldown_holds_with_one_short_notice(service, sent):
    bot = await connect(settings_for(service.checkpoint_dir, user_cooldown_s=60, channel_cooldown_s=30), service)
    first, second = dpytest.get_config().members

    await dpytest.message(mention(bot), member=first)
    assert dpytest.verify().message().content("lol same")
    await dpytest.message(f"{mention(bot)} again", member=first)
    assert dpytest.verify().message().contains().content("Give me 60 s")
    await dpytest.message(f"{mention(bot)} and again", member=first)
    assert dpytest.verify().message().nothing()  # one notice per wait, or the notices become the spam
    await dpytest.message(mention(bot), member=second)  # someone else, same channel: the channel waits too,
    assert dpytest.verify().message().nothing()  # and has had its notice for this wait
    assert service.requests_served == 1
    await dpytest.empty_queue()


async def test_a_member_in_cooldown_costs_no_chain_walk(service, sent, monkeypatch):
    bot = await connect(settings_for(service.checkpoint_dir, user_cooldown_s=60), service)
    conversation = bot.get_cog("Conversation")
    walks = []
    real = conversation.chain_of

    async def counted(message):
        walks.append(message.id)
        return await real(message)

    monkeypatch.setattr(conversation, "chain_of", counted)
    member = dpytest.get_config().members[0]
    for _ in range(3):
        await dpytest.message(f"{mention(bot)} hi", member=member)
    assert len(walks) == 1  # the two in cooldown were told to wait, not walked up
    await dpytest.empty_queue()


async def test_fifty_people_mentioning_at_once_in_one_channel_get_one_notice(service, sent):
    bot = await connect(settings_for(service.checkpoint_dir, user_cooldown_s=60, channel_cooldown_s=30), service,
                        members=50)
    for member in dpytest.get_config().members:
        await dpytest.message(f"{mention(bot)} hi", member=member)
    replies = [p["content"] for p in sent]
    assert len(replies) == 2 and not replies[0].startswith("⏳") and "Give me 30 s" in replies[1], replies
    assert service.requests_served == 1
    await dpytest.empty_queue()


async def test_a_server_gets_so_many_generations_a_minute(service, sent):
    bot = await connect(settings_for(service.checkpoint_dir, server_per_minute=3), service, members=6)
    for member in dpytest.get_config().members:
        await dpytest.message(f"{mention(bot)} hi", member=member)
    replies = [p["content"] for p in sent]
    assert len(replies) == 4 and not any(r.startswith("⏳") for r in replies[:3]), replies  # three replies
    assert 50 <= int(re.search(r"Give me (\d+) s", replies[3]).group(1)) <= 60  # one notice for the channel
    inter = interaction(dpytest.get_config().members[0].id, dpytest.get_config().channels[0].id,
                        dpytest.get_config().guilds[0].id)
    await slash(bot, "post", inter)  # slash commands count against the same cap
    inter.response.defer.assert_not_awaited()
    assert service.requests_served == 3
    await dpytest.empty_queue()


async def test_an_interaction_past_its_lifetime_is_not_sampled(service):
    bot = await connect(settings_for(service.checkpoint_dir), service)
    late = interaction()
    late.created_at = discord.utils.utcnow() - datetime.timedelta(minutes=15)  # Discord takes no answer now
    await slash(bot, "post", late)
    assert service.requests_served == 0 and service.load()["expired"] == 1
    timely = interaction(user_id=7)
    await slash(bot, "post", timely)
    assert service.requests_served == 1
    await dpytest.empty_queue()


async def test_a_busy_service_gets_a_short_busy_line(service, sent):
    bot = await connect(settings_for(service.checkpoint_dir), service)
    service.max_pending_rows = 0  # nothing fits: the service refuses every request
    await dpytest.message(f"{mention(bot)} hi")
    assert sent[-1]["content"] == BUSY
    await dpytest.empty_queue()


async def test_still_learning_before_any_model(tmp_path):
    service = GenerationService(tmp_path / "empty", max_chars=MAX_CHARS, poll_s=60)
    await service.start()
    try:
        bot = await connect(settings_for(tmp_path / "empty"), service)
        await dpytest.message(mention(bot))
        assert dpytest.verify().message().content(STILL_LEARNING)

        inter = interaction()
        await slash(bot, "status", inter)
        assert inter.response.send_message.await_args.args[0] == STILL_LEARNING
    finally:
        await dpytest.empty_queue()
        await service.stop()


async def test_a_new_checkpoint_version_is_picked_up_while_the_bot_runs(bot, service, trained_dir):
    await dpytest.message(mention(bot))
    assert dpytest.verify().message().content("lol same")

    publish(trained_dir, service.checkpoint_dir, 2, shout=True, val_loss=0.25)
    await eventually(lambda: service.status()["version"] == 2)

    await dpytest.message(mention(bot))
    assert dpytest.verify().message().content("LOL SAME")
    inter = interaction()
    await slash(bot, "status", inter)
    shown = inter.response.send_message.await_args.args[0]
    assert "version **2**" in shown and "0.250" in shown and "<t:" in shown
    assert "Best of 8: of 16 candidates so far, 0 copied" in shown  # two mentions answered, 8 candidates each


# --- slash commands ------------------------------------------------------------------------------


async def test_dann_post_defers_then_posts_at_the_asked_temperature(bot, service, monkeypatch):
    events = []
    real = service.generate

    async def generate(request, **_):
        events.append(("generate", request.mode, request.temperature))
        generation = await real(request)
        events.append(("generated", generation.texts[0]))
        return generation

    monkeypatch.setattr(service, "generate", generate)
    inter = interaction()
    inter.response.defer.side_effect = lambda **kw: events.append(("defer", kw))

    await slash(bot, "post", inter, temp=0.4)
    await slash(bot, "post", interaction(user_id=3, channel_id=4))  # no temp: the setting's

    assert events[:2] == [("defer", {"thinking": True}), ("generate", "post", 0.4)]
    assert events[-2] == ("generate", "post", 0.05)
    inter.followup.send.assert_awaited_once()
    assert inter.followup.send.await_args.args == (events[2][1],)  # the post, as generated
    assert inter.followup.send.await_args.kwargs["allowed_mentions"].to_dict() == NO_PINGS


async def test_the_temperature_option_carries_its_limits(bot):
    for name in ("post", "reply"):
        temp = next(p for p in dann(bot).get_command(name).parameters if p.name == "temp")
        assert (temp.type, temp.min_value, temp.max_value, temp.required) == (AppCommandOptionType.number, 0.05, 2.0, False)
    payload = dann(bot).to_dict(bot.tree)
    post = next(o for o in payload["options"] if o["name"] == "post")
    assert post["options"][0] | {"description": ""} == {"type": 10, "name": "temp", "description": "",
                                                        "required": False, "min_value": 0.05, "max_value": 2.0}


async def test_dann_reply_quotes_the_text_and_answers_it(bot):
    inter = interaction()
    await slash(bot, "reply", inter, text="@everyone <@123> what's up\nfriends")
    inter.response.defer.assert_awaited_once_with(thinking=True)
    text = inter.followup.send.await_args.args[0]
    assert text.startswith("> @everyone <@123> what's up\n> friends\n")
    assert len(text.splitlines()) == 3
    assert inter.followup.send.await_args.kwargs["allowed_mentions"].to_dict() == NO_PINGS


async def test_dann_reply_never_quotes_a_forgotten_phrase_and_escapes_markdown(bot, service):
    ForgetList(store_beside(service.checkpoint_dir)).add("my secret plan")
    inter = interaction()
    await slash(bot, "reply", inter, text="# my SECRET plan!")
    said = inter.followup.send.await_args.args[0]
    assert "secret" not in said.lower() and said == "the context holds a phrase dann was asked to forget"
    inter = interaction()
    await slash(bot, "reply", inter, text="# **big** ||news||")
    assert inter.followup.send.await_args.args[0].startswith(r"> \# \*\*big\*\* \|\|news\|\|")


async def test_slash_commands_and_mentions_share_the_cooldown(service):
    bot = await connect(settings_for(service.checkpoint_dir, user_cooldown_s=60), service)
    member, channel = dpytest.get_config().members[0], dpytest.get_config().channels[0]
    await slash(bot, "post", interaction(member.id, channel.id))
    again = interaction(member.id, channel.id)
    await slash(bot, "post", again)

    again.response.defer.assert_not_awaited()
    notice = again.response.send_message.await_args
    assert "Give me 60 s" in notice.args[0] and notice.kwargs["ephemeral"] is True  # only the asker sees it
    await dpytest.message(mention(bot), member=member)  # switching to a mention does not dodge it
    assert dpytest.verify().message().contains().content("Give me")
    assert service.requests_served == 1
    await dpytest.empty_queue()


# --- starting -----------------------------------------------------------------------------------


async def test_commands_are_synced_only_on_request_and_to_the_configured_server(service, monkeypatch):
    for guild_id in (None, 1234):
        bot = create_bot(settings_for(service.checkpoint_dir, discord_guild_ids=[guild_id] if guild_id else []),
                         service=service)
        sync = AsyncMock(return_value=[])
        monkeypatch.setattr(bot.tree, "sync", sync)
        await bot.setup_hook()
        sync.assert_not_awaited()  # not on every start: Discord rate-limits command creation

        bot.sync_commands = True
        await bot.setup_hook()
        if guild_id is None:
            sync.assert_awaited_once_with()
        else:
            assert sync.await_args.kwargs["guild"].id == guild_id
            assert sorted(c.name for c in bot.tree.get_commands(guild=discord.Object(guild_id))) == [
                "Delete and forget", "Why did dann say this?", "dann"]

    sync.side_effect = discord.Forbidden(MagicMock(status=403, reason="Forbidden"), "Missing Access")
    with pytest.raises(DannError, match="applications.commands"):  # not invited with that scope
        await bot.setup_hook()


def test_safe_defaults_no_pings_and_no_privileged_intents(tmp_path):
    bot = create_bot(settings_for(tmp_path))
    assert bot.allowed_mentions.to_dict() == NO_PINGS  # whatever a future send forgets to pass
    assert bot.intents.guild_messages and bot.intents.dm_messages
    assert not (bot.intents.message_content or bot.intents.members or bot.intents.presences)


def test_a_missing_token_is_a_clear_error_before_connecting(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("tried to connect")

    monkeypatch.setattr(discord.Client, "run", no_network)
    for token in (None, "", "  "):
        with pytest.raises(DannError, match="DANN_DISCORD_TOKEN"):
            run_bot(settings_for(tmp_path, discord_token=token))


def test_a_refused_token_is_a_clear_error_and_never_logged(tmp_path, monkeypatch, caplog, capsys):
    secret = "MTIz.fake.token-that-must-not-leak"

    async def refuse(self, token):
        raise discord.LoginFailure("Improper token has been passed.")

    monkeypatch.setattr(discord.http.HTTPClient, "static_login", refuse)
    with pytest.raises(DannError, match="refused the token in DANN_DISCORD_TOKEN") as error:
        run_bot(settings_for(tmp_path, discord_token=secret))
    out = capsys.readouterr()
    assert secret not in str(error.value) + caplog.text + out.out + out.err


# --- text -----------------------------------------------------------------------------------------


def test_clip_counts_utf16_units_and_never_splits_a_character():
    assert clip("a" * 2000) == "a" * 2000
    assert clip("a" * 2001) == "a" * 2000
    assert clip("😀" * 1000 + "a") == "😀" * 1000
    assert clip("a" + "😀" * 1000) == "a" + "😀" * 999  # the half emoji at unit 2000 is dropped
    assert clip("é" * 3000) == "é" * 2000


def test_the_prompt_is_the_message_without_mentions_and_markup():
    assert prompt_text("<@123> <@!456>  good   morning <#789> <@&12> <:wave:555>!", 500) == "good morning :wave:!"
    assert prompt_text("<@123> " + "x" * 10 + "tail", 6) == "xxtail"
    assert prompt_text("<@123>", 500) == ""
    assert prompt_text("anything", 0) == ""
