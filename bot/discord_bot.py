"""The Discord front end: mention (or DM) dann and it replies in the voice; `/dann post|reply|status`.

Safe by default:
- Nothing it sends can ping: allowed mentions are none on the Bot and on every send, so a
  generated "@everyone" is only text.
- It answers people only: messages from bots (itself included) and webhooks are ignored, so two
  bots cannot talk to each other forever. A mention means `bot.user in message.mentions`;
  `ClientUser.mentioned_in` is also true for @everyone and @here.
- One cooldown per person and per channel across mentions and slash commands, with a short notice.
- Generation goes through the GenerationService, off the event loop, so the gateway heartbeat
  keeps beating while the model samples. Interactions are deferred before anything slow.
- No privileged intents: Discord sends the text of messages that mention the bot, and of DMs,
  without the message_content intent, and that is all dann reads.
"""

import datetime
import logging
import math
import re

import discord
from discord import app_commands
from discord.ext import commands

from bot.cooldown import Cooldown
from dann.serving.request import GenerationRequest
from dann.serving.service import GenerationService, NotReady, service_for
from dann.serving.status import render_text
from dann.settings import Settings, load_settings
from lstm.errors import DannError

log = logging.getLogger("dann.discord")

DISCORD_LIMIT = 2000  # Discord counts UTF-16 code units, not Python characters
NO_PINGS = discord.AllowedMentions.none()
STILL_LEARNING = "I'm still learning: no model has been trained yet. Ask me again once one is!"
SORRY = "Something went wrong while I was thinking. It has been logged."
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


def quote(text: str) -> str:
    text = text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"
    return "\n".join("> " + line for line in text.splitlines() or [""])


class DannBot(commands.Bot):
    def __init__(self, settings: Settings, service: GenerationService, *, owns_service: bool):
        # dann has no voice features: discord.py's warnings about missing voice libraries are noise.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        # Intents.default() leaves out every privileged intent (message_content, members, presences).
        super().__init__(command_prefix=commands.when_mentioned, intents=discord.Intents.default(),
                         allowed_mentions=NO_PINGS, help_command=None)
        self.settings = settings
        self.service = service
        self.owns_service = owns_service  # a service shared with the web page is started by its owner
        self.cooldown = Cooldown(settings.user_cooldown_s, settings.channel_cooldown_s)
        self.sync_commands = False  # set by run_bot(sync=True)
        self.tree.add_command(DannCommands(self))

    async def setup_hook(self) -> None:
        if self.sync_commands:
            await self.sync_tree()
        if self.owns_service:
            await self.service.start()

    async def close(self) -> None:
        if self.owns_service:
            await self.service.stop()
        await super().close()

    async def sync_tree(self) -> None:
        """Publish the slash commands. Only on request: Discord allows 200 command creations a day."""
        guild_id = self.settings.discord_guild_id
        if not guild_id:
            synced = await self.tree.sync()
            log.info("synced %d slash command group(s) globally", len(synced))
            return
        guild = discord.Object(id=guild_id)  # a copy in one server appears at once
        self.tree.copy_global_to(guild=guild)
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.Forbidden:
            raise DannError(
                f"Discord refused to add the slash commands to server {guild_id}: invite the bot there with "
                "the applications.commands scope (see the README), or check DANN_DISCORD_GUILD_ID"
            ) from None
        log.info("synced %d slash command group(s) to server %s", len(synced), guild_id)

    async def on_ready(self) -> None:
        log.info("connected to Discord as %s (id %s), in %d server(s)", self.user, self.user.id, len(self.guilds))

    # --- mentions and DMs --------------------------------------------------------------------

    def wants(self, message: discord.Message) -> bool:
        """Whether this message asks dann for a reply: a person mentioning it, or a DM."""
        if message.author.bot or message.webhook_id is not None or message.author == self.user:
            return False
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return False  # joins, pins, boosts: system messages are nobody talking to dann
        if isinstance(message.channel, discord.DMChannel):
            return True
        own_role = message.guild.self_role if message.guild else None  # picked from @-autocomplete
        return self.user in message.mentions or (own_role is not None and own_role in message.role_mentions)

    async def on_message(self, message: discord.Message) -> None:
        if not self.wants(message):
            return
        wait = self.cooldown.try_acquire(message.author.id, message.channel.id)
        try:
            if wait:
                if self.cooldown.should_notice(message.author.id, wait):
                    await self.answer(message, wait_notice(wait), delete_after=wait)
                return
            context = prompt_text(message.content, self.settings.max_prompt_chars) or None
            async with message.channel.typing():
                text = await self.speak("reply", context=context)
            await self.answer(message, text)
        except discord.Forbidden:  # a channel where it may read but not type or speak
            log.warning("no permission to send messages in channel %s", message.channel.id)

    async def answer(self, message: discord.Message, text: str, **options) -> None:
        # A reference that survives the original being deleted while the model was sampling.
        reference = message.to_reference(fail_if_not_exists=False)
        await message.channel.send(clip(text), reference=reference, allowed_mentions=NO_PINGS, **options)

    # --- generation --------------------------------------------------------------------------

    async def speak(self, mode: str, *, temperature: float | None = None, context: str | None = None) -> str:
        """One text in the voice, or a sentence for the person when there is none to give."""
        if temperature is None:
            temperature = self.settings.temperature
        try:
            generation = await self.service.generate(GenerationRequest(
                mode, temperature=temperature, context=context, max_chars=self.settings.max_chars))
        except NotReady:
            return STILL_LEARNING
        except DannError as error:  # expected: one sentence for the person
            return str(error)
        except Exception:
            log.exception("generating a %s failed", mode)
            return SORRY
        text = generation.texts[0]
        return text if text.strip() else "…"  # Discord rejects an empty message; the model may end at once

    def status_text(self) -> str:
        status = self.service.status()
        if status is None:
            return STILL_LEARNING
        return render_text(status, bold=lambda text: f"**{text}**", when=discord_time)


def discord_time(moment: datetime.datetime) -> str:
    """A time every reader sees in their own zone, and how long ago it was."""
    return f"{discord.utils.format_dt(moment, 'f')} ({discord.utils.format_dt(moment, 'R')})"


class DannCommands(app_commands.Group):
    """/dann post, /dann reply, /dann status."""

    def __init__(self, bot: DannBot):
        super().__init__(name="dann", description="dann speaks in one person's voice")
        self.bot = bot

    async def _refused(self, interaction: discord.Interaction) -> bool:
        """Answers (only to the asker) and returns True when the cooldown holds."""
        wait = self.bot.cooldown.try_acquire(interaction.user.id, interaction.channel_id or interaction.user.id)
        if wait:
            await interaction.response.send_message(wait_notice(wait), ephemeral=True)
        return bool(wait)

    @app_commands.command(name="post", description="dann posts something new")
    @app_commands.describe(temp="How adventurous, 0.05 to 2.0: low is safe and repetitive, high is wild")
    async def post(self, interaction: discord.Interaction,
                   temp: app_commands.Range[float, 0.05, 2.0] | None = None) -> None:
        if await self._refused(interaction):
            return
        await interaction.response.defer(thinking=True)  # Discord wants an answer within 3 s
        text = await self.bot.speak("post", temperature=temp)
        await interaction.followup.send(clip(text), allowed_mentions=NO_PINGS)

    @app_commands.command(name="reply", description="dann replies to a text you give it")
    @app_commands.describe(text="What dann should reply to", temp="How adventurous, 0.05 to 2.0")
    async def reply(self, interaction: discord.Interaction, text: app_commands.Range[str, 1, 1000],
                    temp: app_commands.Range[float, 0.05, 2.0] | None = None) -> None:
        if await self._refused(interaction):
            return
        await interaction.response.defer(thinking=True)
        context = prompt_text(text, self.bot.settings.max_prompt_chars) or None
        answer = await self.bot.speak("reply", temperature=temp, context=context)
        await interaction.followup.send(clip(f"{quote(text)}\n{answer}"), allowed_mentions=NO_PINGS)

    @app_commands.command(name="status", description="Which model dann is using, when it was trained, how good it is")
    async def status(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(self.bot.status_text(), ephemeral=True, allowed_mentions=NO_PINGS)


def create_bot(settings: Settings | None = None, *, service: GenerationService | None = None) -> DannBot:
    """The bot, not yet connected. Without `service` it makes its own, and starts and stops it
    with the bot; a service passed in (shared with the web page, or a test's) is left to its owner."""
    settings = settings or load_settings()
    owns_service = service is None
    if service is None:
        service = service_for(settings)
    return DannBot(settings, service, owns_service=owns_service)


def run_bot(settings: Settings, sync: bool = False) -> None:
    """Connect and serve until interrupted. With `sync`, first publish the slash commands (to
    DANN_DISCORD_GUILD_ID if set, else globally). Raises DannError for a missing or refused token."""
    token = settings.discord_token.get_secret_value().strip() if settings.discord_token else ""
    if not token:
        raise DannError("no Discord bot token: set DANN_DISCORD_TOKEN (in the environment or .env) to the token "
                         "from the Developer Portal (your application -> Bot -> Reset Token)")
    bot = create_bot(settings)
    bot.sync_commands = sync
    try:
        bot.run(token, log_handler=None)  # the CLI has set up logging; discord.py would add a second handler
    except discord.LoginFailure:
        raise DannError("Discord refused the token in DANN_DISCORD_TOKEN: reset it in the Developer Portal "
                         "(your application -> Bot -> Reset Token) and set the new one") from None
