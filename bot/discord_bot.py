"""The Discord front end: mention dann, reply to one of its messages, or DM it, and it replies
in the voice; the /dann commands are in commands.py.

Who it answers (`DannBot.refusal`):
- only in the servers of DANN_DISCORD_GUILD_IDS when that is set; it leaves any other it is in;
- in DMs only the owners (DANN_OWNER_IDS), unless DANN_ANSWER_DMS is true;
- while paused (control.py), only the owners.

Safe by default:
- Nothing it sends can ping: allowed mentions are none on the Bot and on every send, so a
  generated "@everyone" is only text.
- It answers people only: messages from bots (itself included) and webhooks are ignored, so two
  bots cannot talk to each other forever. A mention means `bot.user in message.mentions`;
  `ClientUser.mentioned_in` is also true for @everyone and @here. A reply to one of dann's
  messages addresses it too, and the reply chain above primes the answer (thread.py); a chain
  holding DANN_MAX_THREAD_DEPTH of dann's messages is answered no more.
- Flood control across mentions and slash commands (cooldown.py): one reply in flight per person,
  a cooldown per person and per channel, caps per server and overall per minute, and at most one
  "give me N s" notice per channel per wait. When the generation service is too busy, a short
  "busy" line instead of a wait that never ends.
- Generation goes through the GenerationService, off the event loop, so the gateway heartbeat
  keeps beating while the model samples. Interactions are deferred before anything slow.
- No privileged intents unless DANN_READ_MESSAGES is true: Discord sends the text of messages that
  mention the bot, and of DMs, without the message_content intent, and that is all dann reads.
  (A reply with its ping switched off arrives without its text then; dann answers the chain.)
  With the intent, admins may let it chime in unprompted (chime.py).
- Scheduled posts (autopost.py) and quiet hours are kept in bot-presence.json (presence.py).
"""

import datetime
import logging

import discord
from discord.ext import commands

from bot.autopost import Autoposter
from bot.chain import Chain, chain_above, parent_now
from bot.chime import Chimes
from bot.commands import DannCommands, delete_and_forget
from bot.control import Control, ControlError
from bot.cooldown import Cooldown
from bot.feedback import Feedback
from bot.presence import Presence
from bot.text import BUSY, NO_PINGS, SORRY, STILL_LEARNING, clip, discord_time, prompt_text, wait_notice
from dann.schedule import is_quiet
from dann.serving.service import Busy, GenerationService, NotReady, service_for
from dann.serving.status import render_text
from dann.serving.votes import Votes, game_file, shown_tally
from dann.settings import Settings, load_settings
from dann.voice.forget import ForgetList
from dann.voice.request import GenerationRequest
from lstm.errors import DannError

log = logging.getLogger("dann.discord")

class DannBot(commands.Bot):
    def __init__(self, settings: Settings, service: GenerationService, *, owns_service: bool):
        # dann has no voice features: discord.py's warnings about missing voice libraries are noise.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        # Intents.default() leaves out every privileged intent (message_content, members, presences).
        intents = discord.Intents.default()
        intents.message_content = settings.read_messages
        super().__init__(command_prefix=commands.when_mentioned, intents=intents,
                         allowed_mentions=NO_PINGS, help_command=None)
        self.settings = settings
        self.service = service
        self.owns_service = owns_service  # a service shared with the web page is started by its owner
        self.cooldown = Cooldown(settings.user_cooldown_s, settings.channel_cooldown_s,
                                 server_per_minute=settings.server_per_minute, global_per_minute=settings.bot_per_minute)
        self.control = Control(settings.checkpoint_dir)
        self.forget = ForgetList(settings.checkpoint_dir)  # the file the service's filter reads
        self.feedback = Feedback(settings.checkpoint_dir)
        self.game_votes = Votes(game_file(settings))  # the web page's "Real or dann?" (dann/serving/votes.py)
        self.presence = Presence(settings.checkpoint_dir)
        self.autopost = Autoposter(self)
        self.chimes = Chimes(settings.chime_gap_s)
        self.sync_commands = False  # set by run_bot(sync=True)
        self.owners_checked = False  # on_ready runs again after every reconnect; the lookup need not
        self.tree.add_command(DannCommands(self))
        self.tree.add_command(delete_and_forget(self))

    async def setup_hook(self) -> None:
        if self.sync_commands:
            await self.sync_tree()
        if self.owns_service:
            await self.service.start()

    async def close(self) -> None:
        self.autopost.stop()
        if self.owns_service:
            await self.service.stop()
        await super().close()

    async def sync_tree(self) -> None:
        """Publish the slash commands. Only on request: Discord allows 200 command creations a day."""
        guild_ids = self.settings.discord_guild_ids
        if not guild_ids:
            synced = await self.tree.sync()
            log.info("synced %d slash command(s) globally", len(synced))
            return
        for guild_id in guild_ids:
            guild = discord.Object(id=guild_id)  # a copy in one server appears at once
            self.tree.copy_global_to(guild=guild)
            try:
                synced = await self.tree.sync(guild=guild)
            except discord.Forbidden:
                raise DannError(
                    f"Discord refused to add the slash commands to server {guild_id}: invite the bot there with "
                    "the applications.commands scope (see the README), or check DANN_DISCORD_GUILD_IDS"
                ) from None
            log.info("synced %d slash command(s) to server %s", len(synced), guild_id)

    async def on_ready(self) -> None:
        log.info("connected to Discord as %s (id %s), in %d server(s)", self.user, self.user.id, len(self.guilds))
        for guild in list(self.guilds):
            await self.on_guild_join(guild)
        if not self.autopost.running:  # now that its channels are known: a post due at once needs one
            self.autopost.start()
        if self.owners_checked:
            return
        self.owners_checked = True
        for owner_id in self.settings.owner_ids:
            try:
                await self.fetch_user(owner_id)
            except discord.NotFound:
                log.warning("DANN_OWNER_IDS: Discord knows no user %d; check the id (Developer Mode -> right-click "
                            "the user -> Copy User ID)", owner_id)
            except discord.HTTPException as error:
                log.warning("could not look up owner %d (%s)", owner_id, error)
        if not self.settings.owner_ids:
            log.warning("no owner: set DANN_OWNER_IDS so that someone can pause dann and make it forget")

    async def on_guild_join(self, guild: discord.Guild) -> None:
        if self.guild_allowed(guild.id):
            return
        log.warning("leaving server %s (%s): it is not in DANN_DISCORD_GUILD_IDS", guild.id, guild.name)
        try:
            await guild.leave()
        except discord.HTTPException as error:
            log.warning("could not leave server %s (%s); its messages are ignored", guild.id, error)

    # --- who may do what ---------------------------------------------------------------------

    def is_owner(self, user_id: int) -> bool:
        return user_id in self.settings.owner_ids

    def guild_allowed(self, guild_id: int | None) -> bool:
        return guild_id is None or not self.settings.discord_guild_ids or guild_id in self.settings.discord_guild_ids

    def pause_of(self, guild_id: int | None) -> dict | None:
        """The pause in force in this server (or everywhere). A pause file that cannot be read
        counts as a pause everywhere: when in doubt, quiet."""
        try:
            return self.control.pause_of(guild_id)
        except ControlError as error:
            log.error("%s; answering owners only until it is fixed", error)
            return {"until": None, "everywhere": True}

    def refusal(self, user_id: int, guild_id: int | None) -> str | None:
        """Why dann does not speak for this person here (guild_id None: a DM), or None if it does."""
        if not self.guild_allowed(guild_id):
            return "dann is not enabled in this server."
        if self.is_owner(user_id):
            return None
        if guild_id is None and not self.settings.answer_dms:
            return "dann answers DMs from its owner only."
        if self.pause_of(guild_id) is not None:
            return "dann is paused for now."
        return None

    # --- mentions and DMs --------------------------------------------------------------------

    def from_a_person(self, message: discord.Message) -> bool:
        """Whether a person wrote this, as words: not a bot (itself included), a webhook or a system message."""
        if message.author.bot or message.webhook_id is not None or message.author == self.user:
            return False
        # Joins, pins, boosts: system messages are nobody talking to dann.
        return message.type in (discord.MessageType.default, discord.MessageType.reply)

    def wants(self, message: discord.Message) -> bool:
        """Whether this message asks dann for a reply: a person mentioning it, replying to one of
        its messages (even with the reply's ping off), or a DM."""
        if not self.from_a_person(message):
            return False
        if isinstance(message.channel, discord.DMChannel):
            return True
        own_role = message.guild.self_role if message.guild else None  # picked from @-autocomplete
        if self.user in message.mentions or (own_role is not None and own_role in message.role_mentions):
            return True
        above = parent_now(message)
        return above is not None and self.user is not None and above.author.id == self.user.id

    async def chain_of(self, message: discord.Message) -> Chain:
        return await chain_above(message, self.user, max_messages=self.settings.thread_messages,
                                 max_chars=self.settings.thread_chars, depth_cap=self.settings.max_thread_depth)

    def context_of(self, message: discord.Message, chain: Chain) -> str | tuple[str, ...] | None:
        """What primes the answer to `message`: the chain above it, then its own text."""
        own = prompt_text(message.content, self.settings.max_prompt_chars)
        texts = chain.texts + ((own,) if own else ())
        return texts if len(texts) > 1 else (texts[0] if texts else None)

    def at_cap(self, message: discord.Message, chain: Chain) -> bool:
        if chain.dann_messages < self.settings.max_thread_depth:
            return False
        log.info("not answering message %s: its reply chain holds %d of dann's messages already (DANN_MAX_THREAD_DEPTH)",
                 message.id, chain.dann_messages)
        return True

    async def on_message(self, message: discord.Message) -> None:
        if not self.wants(message):
            if self.from_a_person(message):
                await self.maybe_chime(message)
            return
        guild_id = message.guild.id if message.guild else None
        if self.refusal(message.author.id, guild_id):
            return  # in silence: a notice to every mention would be the noise a pause is there to stop
        chain = await self.chain_of(message)
        if self.at_cap(message, chain):
            return
        wait = self.cooldown.try_acquire(message.author.id, message.channel.id, guild_id)
        try:
            if wait:
                if self.cooldown.should_notice(message.author.id, message.channel.id, wait):
                    await self.answer(message, wait_notice(wait), delete_after=wait)
                return
            async with message.channel.typing():
                text, version = await self.speak("reply", context=self.context_of(message, chain),
                                                 client=str(message.author.id))
            self.remember(await self.answer(message, text), version)
        except discord.Forbidden:  # a channel where it may read but not type or speak
            log.warning("no permission to send messages in channel %s", message.channel.id)
        finally:
            if not wait:
                self.cooldown.release(message.author.id)

    async def maybe_chime(self, message: discord.Message) -> None:
        """Answer a message nobody addressed to dann, if its channel is opted in and the dice say so."""
        if not self.settings.read_messages or message.guild is None or self.user is None:
            return
        entry = self.presence.chime_of(message.channel.id)
        guild_id = message.guild.id
        if entry is None or entry.get("guild") != guild_id or not self.guild_allowed(guild_id):
            return
        if self.pause_of(guild_id) is not None or is_quiet(self.presence.quiet_of(guild_id),
                                                             datetime.datetime.now(datetime.UTC)):
            return
        chain = await self.chain_of(message)
        if self.at_cap(message, chain) or not self.chimes.due(message.channel.id, entry["chance"]):
            return
        # dann itself is the asker: one chime-in in flight at a time, within the channel's and the
        # server's limits like any other generation, and silent when they hold.
        if self.cooldown.try_acquire(self.user.id, message.channel.id, guild_id):
            return
        try:
            text, version = await self.speak("reply", context=self.context_of(message, chain),
                                             client=f"chime:{message.channel.id}")
            if version is not None:  # no model, or busy: nobody asked, so nothing is said
                self.remember(await self.answer(message, text), version)
        except discord.Forbidden:
            log.warning("no permission to chime in in channel %s", message.channel.id)
        finally:
            self.cooldown.release(self.user.id)

    async def answer(self, message: discord.Message, text: str, **options) -> discord.Message:
        # A reference that survives the original being deleted while the model was sampling.
        reference = message.to_reference(fail_if_not_exists=False)
        return await message.channel.send(clip(text), reference=reference, allowed_mentions=NO_PINGS, **options)

    # --- reactions ---------------------------------------------------------------------------

    def remember(self, sent, version: int | None) -> None:
        """Note which model wrote a message just sent, so reactions to it count for that version."""
        if version is not None and isinstance(getattr(sent, "id", None), int):
            self.feedback.said(sent.id, version)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if self.user is not None and payload.user_id != self.user.id:
            self.feedback.react(payload.message_id, str(payload.emoji), +1)

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        if self.user is not None and payload.user_id != self.user.id:
            self.feedback.react(payload.message_id, str(payload.emoji), -1)

    # --- generation --------------------------------------------------------------------------

    async def speak(self, mode: str, *, temperature: float | None = None, context: str | tuple[str, ...] | None = None,
                    client: str = "", deadline_s: float | None = None) -> tuple[str, int | None]:
        """One text in the voice and the model version that wrote it, or a sentence for the person
        (and None) when there is none to give. `client` (the asker) is their place in the fair
        queue; `deadline_s` is how long their answer may take (an interaction's time left)."""
        if temperature is None:
            temperature = self.settings.temperature
        try:
            generation = await self.service.generate(GenerationRequest(
                mode, temperature=temperature, context=context, max_chars=self.settings.max_chars),
                client=client, deadline_s=deadline_s)
        except NotReady:
            return STILL_LEARNING, None
        except Busy:
            return BUSY, None
        except DannError as error:  # expected: one sentence for the person
            return str(error), None
        except Exception:
            log.exception("generating a %s failed", mode)
            return SORRY, None
        text = generation.texts[0]
        # Discord rejects an empty message; the model may end at once.
        return (text if text.strip() else "…"), generation.model_version

    def status_text(self) -> str:
        status = self.service.status()
        if status is None:
            return STILL_LEARNING
        votes = self.feedback.of(status["version"])
        status = {**status, "game": shown_tally(self.settings, self.game_votes, status["version"])}
        return (render_text(status, bold=lambda text: f"**{text}**", when=discord_time)
                + f"\nReactions to this version's messages: 👍 {votes['up']}, 👎 {votes['down']}.")


def create_bot(settings: Settings | None = None, *, service: GenerationService | None = None) -> DannBot:
    """The bot, not yet connected. Without `service` it makes its own, and starts and stops it
    with the bot; a service passed in (shared with the web page, or a test's) is left to its owner."""
    settings = settings or load_settings()
    owns_service = service is None
    if service is None:
        service = service_for(settings)
    return DannBot(settings, service, owns_service=owns_service)


def run_bot(settings: Settings, sync: bool = False) -> None:
    """Connect and serve until interrupted. With `sync`, first publish the slash commands (to each
    of DANN_DISCORD_GUILD_IDS if set, else globally). Raises DannError for a missing or refused token."""
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
