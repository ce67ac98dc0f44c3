"""Who is in charge of the bot: owners, server admins, the server allow-list, pausing across a
restart, forgetting, "Delete and forget" and /dann about. Messages go through dpytest; slash
commands and the message command get mocked interactions (dpytest has none)."""

from unittest.mock import AsyncMock, MagicMock

import discord
import discord.ext.test as dpytest
import pytest

from bot.commands import MANAGERS_ONLY, OWNER_ONLY
from dann.state import store_beside
from dann.state.pause import Control
from dann.voice.forget import ForgetList
from tests.bot.helpers import connect, interaction, mention, said, settings_for, slash
from tests.helpers import read_only

pytestmark = pytest.mark.usefixtures("service")


async def owned_bot(service, **overrides):
    """A bot on dpytest's fake server whose first member is the owner."""
    bot = await connect(settings_for(service.checkpoint_dir, **overrides), service)
    owner, other = dpytest.get_config().members[:2]
    bot.settings = bot.settings.model_copy(update={"owner_ids": [owner.id], **overrides})
    return bot, owner, other


@pytest.fixture
async def cleanup():
    yield
    await dpytest.empty_queue()


async def test_pausing_takes_an_owner_silences_mentions_survives_a_restart_and_resume_ends_it(service, cleanup):
    bot, owner, other = await owned_bot(service)
    guild = dpytest.get_config().guilds[0]

    refused = interaction(user_id=other.id, guild_id=guild.id)
    await slash(bot, "pause", refused)
    assert said(refused) == MANAGERS_ONLY

    paused = interaction(user_id=owner.id, guild_id=guild.id)
    await slash(bot, "pause", paused)
    assert said(paused).startswith("Paused everywhere until someone resumes it")
    await dpytest.message(f"{mention(bot)} hello?", member=1)
    assert dpytest.verify().message().nothing()  # the other member gets nothing
    await dpytest.message(f"{mention(bot)} it's me", member=0)
    assert dpytest.verify().message().content("lol same")  # the owner still does

    restarted, owner, other = await owned_bot(service)  # a new process reads the same file
    await dpytest.message(f"{mention(restarted)} hello?", member=1)
    assert dpytest.verify().message().nothing()
    post = interaction(user_id=other.id, guild_id=dpytest.get_config().guilds[0].id)
    await slash(restarted, "post", post)
    assert said(post) == "dann is paused for now." and post.followup.send.await_count == 0

    resumed = interaction(user_id=owner.id, guild_id=dpytest.get_config().guilds[0].id)
    await slash(restarted, "resume", resumed)
    assert said(resumed) == "Resumed: dann answers again."
    await dpytest.message(f"{mention(restarted)} hello?", member=1)
    assert dpytest.verify().message().content("lol same")


async def test_a_server_admin_pauses_only_their_server_and_cannot_lift_the_owners_pause(service, cleanup):
    bot, owner, other = await owned_bot(service)
    here = dpytest.get_config().guilds[0].id
    admin = interaction(user_id=other.id, guild_id=here, manage_guild=True)
    await slash(bot, "pause", admin, minutes=30)
    assert said(admin).startswith("Paused in this server until <t:")
    assert bot.refusal(other.id, here) == "dann is paused for now."
    assert bot.refusal(other.id, here + 1) is None  # another server is not paused

    await slash(bot, "pause", interaction(user_id=owner.id, guild_id=here))
    lift = interaction(user_id=other.id, guild_id=here, manage_guild=True)
    await slash(bot, "resume", lift)
    assert "only they can resume it" in said(lift)
    assert bot.refusal(other.id, here) == "dann is paused for now."


async def test_a_timed_pause_ends_by_itself(tmp_path):
    now = [1000.0]
    control = Control(store_beside(tmp_path), clock=lambda: now[0])
    control.pause(None, 5)
    assert control.pause_of(7) == {"until": 1300.0, "everywhere": True}
    now[0] = 1301.0
    assert control.pause_of(7) is None


async def test_a_pause_that_cannot_be_written_is_told_to_the_owner(service, cleanup):
    bot, owner, _ = await owned_bot(service)
    bot.control = Control(read_only(bot.forget.store))  # as a read-only volume gives it
    inter = interaction(user_id=owner.id)
    await slash(bot, "pause", inter)
    assert said(inter).startswith("Could not pause: cannot pause in the state database /")


async def test_a_server_not_in_the_allow_list_gets_no_reply_and_is_left(service, cleanup):
    bot, owner, _ = await owned_bot(service)
    here = dpytest.get_config().guilds[0]
    bot.settings = bot.settings.model_copy(update={"discord_guild_ids": [here.id + 1]})
    await dpytest.message(f"{mention(bot)} hello?", member=1)
    await dpytest.message(f"{mention(bot)} even me?", member=0)
    assert dpytest.verify().message().nothing()  # not even the owner, in a server dann should not be in
    inter = interaction(user_id=owner.id, guild_id=here.id)
    await slash(bot, "post", inter)
    assert said(inter) == "dann is not enabled in this server."

    elsewhere = MagicMock(spec=discord.Guild, id=here.id, leave=AsyncMock())
    elsewhere.name = "elsewhere"
    await bot.on_guild_join(elsewhere)
    elsewhere.leave.assert_awaited_once()
    allowed = MagicMock(spec=discord.Guild, id=here.id + 1, leave=AsyncMock())
    await bot.on_guild_join(allowed)
    allowed.leave.assert_not_awaited()


async def test_forget_is_the_owners_and_refuses_bad_phrases_in_one_line(service, cleanup):
    bot, owner, other = await owned_bot(service)
    inter = interaction(user_id=other.id)
    await slash(bot, "forget", inter, text="lol same")
    assert said(inter) == OWNER_ONLY
    assert ForgetList(store_beside(service.checkpoint_dir)).phrases() == []
    for phrase, problem in ((" ", "no letters or digits"), ("y" * 5000, "at most 500 characters")):
        inter = interaction(user_id=owner.id)
        await slash(bot, "forget", inter, text=phrase)
        assert said(inter).startswith("Could not forget that:") and problem in said(inter)
        assert "\n" not in said(inter)
    inter = interaction(user_id=owner.id)
    await slash(bot, "forget", inter, text="LOL same")
    assert said(inter).startswith("Forgotten")
    await dpytest.message(f"{mention(bot)} hi", member=1)
    assert "lol same" not in dpytest.get_message().content.lower()

    bot.forget = ForgetList(read_only(bot.forget.store))  # as a read-only volume gives it
    inter = interaction(user_id=owner.id)
    await slash(bot, "forget", inter, text="good morning")
    assert said(inter).startswith("Could not forget that: cannot add to the forget list in the state database /")


def own_message(bot, content, answered=None):
    message = MagicMock(spec=discord.Message, content=content, interaction_metadata=None, delete=AsyncMock())
    message.author.id = bot.user.id
    message.reference.message_id = 99
    message.reference.resolved = MagicMock(spec=discord.Message)
    message.reference.resolved.author.id = answered
    return message


async def test_delete_and_forget(service, cleanup):
    bot, owner, other = await owned_bot(service)
    menu = bot.tree.get_command("Delete and forget", type=discord.AppCommandType.message)

    stranger = interaction(user_id=other.id + 1000)
    message = own_message(bot, "lol same", answered=other.id)
    await menu.callback(stranger, message)
    assert said(stranger).startswith("Only dann's owner, or the person it was answering")
    message.delete.assert_not_awaited()

    asker = interaction(user_id=other.id)
    await menu.callback(asker, message)  # the person it answered: deleted, not forgotten
    message.delete.assert_awaited_once()
    assert said(asker) == "Deleted." and ForgetList(store_beside(service.checkpoint_dir)).phrases() == []

    by_owner = interaction(user_id=owner.id)
    reply = own_message(bot, "> what do you say?\nlol same", answered=other.id)
    await menu.callback(by_owner, reply)
    reply.delete.assert_awaited_once()
    assert said(by_owner).startswith("Deleted and forgotten")
    assert ForgetList(store_beside(service.checkpoint_dir)).phrases() == ["lol same"]  # without /dann reply's quote

    someone_elses = own_message(bot, "hi")
    someone_elses.author.id = other.id
    inter = interaction(user_id=owner.id)
    await menu.callback(inter, someone_elses)
    assert said(inter) == "This only works on dann's own messages."


async def test_about_names_the_voice_the_training_date_and_the_owner(service, cleanup):
    bot, owner, _ = await owned_bot(service, voice_name="Sam")
    inter = interaction(user_id=12345)
    await slash(bot, "about", inter)
    text = said(inter)
    assert inter.response.send_message.await_args.kwargs.get("ephemeral") is not True  # in public
    assert "dann is a bot that imitates Sam's posts" in text and "Sam's own post export" in text
    trained = service.status()["trained_at"]
    assert trained and f"{int(trained[8:10])} " in text and trained[:4] in text
    assert f"<@{owner.id}>" in text


async def test_about_follows_the_pause_and_the_cooldown(service, cleanup):
    bot, owner, other = await owned_bot(service, user_cooldown_s=60)
    bot.control.pause(None, None)
    inter = interaction(user_id=other.id)
    await slash(bot, "about", inter)
    assert said(inter) == "dann is paused for now." and inter.response.send_message.await_args.kwargs["ephemeral"]
    bot.control.resume(None)
    first, second = interaction(user_id=other.id), interaction(user_id=other.id)
    await slash(bot, "about", first)
    await slash(bot, "about", second)
    assert "dann is a bot" in said(first) and "Give me" in said(second)


async def test_an_owner_id_discord_does_not_know_is_one_warning_at_start(service, cleanup, caplog, monkeypatch):
    bot, owner, _ = await owned_bot(service)
    bot.settings = bot.settings.model_copy(update={"owner_ids": [owner.id, 4242]})
    known = AsyncMock(side_effect=lambda user_id: owner if user_id == owner.id else (_ for _ in ()).throw(
        discord.NotFound(MagicMock(status=404, reason="Not Found"), "Unknown User")))
    monkeypatch.setattr(bot, "fetch_user", known)
    await bot.on_ready()
    warnings = [r.getMessage() for r in caplog.records if "DANN_OWNER_IDS" in r.getMessage()]
    assert len(warnings) == 1 and "no user 4242" in warnings[0]


async def test_why_did_dann_say_this_answers_the_asker_only(service, cleanup):
    bot, owner, other = await owned_bot(service)
    menu = bot.tree.get_command("Why did dann say this?", type=discord.AppCommandType.message)

    inter = interaction(user_id=other.id)
    await menu.callback(inter, own_message(bot, "> what do you say?\ngood morning friends"))  # a /dann reply
    text = said(inter)
    assert inter.response.send_message.await_args.kwargs["ephemeral"] is True
    # Its three words are in a training post (the quote above the answer is not dann's).
    assert text.startswith('New text: the longest run of words it shares with any one post is 3 words '
                           '("good morning friends")')

    someone_elses = own_message(bot, "good morning friends")
    someone_elses.author.id = other.id
    inter = interaction(user_id=other.id)
    await menu.callback(inter, someone_elses)
    assert said(inter).startswith("That message is not dann's")

    Control(store_beside(service.checkpoint_dir)).pause(None, None)  # the owner's pause holds here too
    inter = interaction(user_id=other.id)
    await menu.callback(inter, own_message(bot, "good morning friends"))
    assert "paused" in said(inter)
