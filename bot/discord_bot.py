"""The Discord front end: mention dann, reply to one of its messages, or DM it, and it replies
in the voice. DannBot holds what every feature shares and decides who dann answers; each feature
is a cog (bot/cogs/), added in `DannBot.setup_hook`, and the /dann commands are in one group
(commands.py) that the cogs fill.

Who it answers (`DannBot.refusal`):
- only in the servers of DANN_DISCORD_GUILD_IDS when that is set; it leaves any other it is in;
- in DMs only the owners (DANN_OWNER_IDS, `DannBot.is_dann_owner`), unless DANN_ANSWER_DMS is true;
- while paused (dann/state/pause.py), only the owners.

Safe by default:
- Nothing it sends can ping: allowed mentions are none on the Bot and on every send, so a
  generated "@everyone" is only text.
- It answers people only: messages from bots (itself included) and webhooks are ignored, so two
  bots cannot talk to each other forever (cogs/conversation.py). A reply to one of dann's
  messages addresses it too, and the reply chain above primes the answer (chain.py); a chain
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
- Scheduled posts (autopost.py) and quiet hours are kept in the state store (presence.py).
"""

import asyncio
import logging

import discord
from discord.ext import commands

from bot.autopost import Autoposter
from bot.cogs.conversation import Conversation
from bot.cogs.learning import Learning
from bot.cogs.owner import OwnerControls
from bot.cogs.presence import PresenceSettings
from bot.cogs.status import StatusAndFeedback
from bot.commands import DannGroup
from bot.cooldown import Cooldown
from bot.feedback import Feedback
from bot.presence import Presence
from bot.text import BUSY, NO_PINGS, SORRY, STILL_LEARNING
from dann.serving.service import Busy, GenerationService, NotReady, service_for
from dann.settings import DiscordSettings, load_settings
from dann.state import open_store
from dann.state.pause import Control, ControlError
from dann.voice.forget import ForgetList
from dann.voice.request import GenerationRequest
from lstm.errors import DannError

log = logging.getLogger("dann.discord")

class DannBot(commands.Bot):
    """The bot and what its cogs share: the settings, the generation service (`speak`), the flood
    control (`cooldown`), the pause file (`control`), the forget list, the reaction counts
    (`feedback`, fed by `remember`), the presence file and its scheduler (`autopost`), and the
    one /dann group (`dann_group`). It decides who dann answers (`refusal`), leaves the servers
    it should not be in, and loads one cog per feature (bot/cogs/)."""

    def __init__(self, settings: DiscordSettings, service: GenerationService, *, owns_service: bool):
        # dann has no voice features: discord.py's warnings about missing voice libraries are noise.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        # Intents.default() leaves out every privileged intent (message_content, members, presences).
        intents = discord.Intents.default()
        intents.message_content = settings.read_messages or settings.learn_from_discord
        super().__init__(command_prefix=commands.when_mentioned, intents=intents,
                         allowed_mentions=NO_PINGS, help_command=None)
        self.settings = settings
        self.service = service
        self.owns_service = owns_service  # a service shared with the web page is started by its owner
        self.cooldown = Cooldown(settings.user_cooldown_s, settings.channel_cooldown_s,
                                 server_per_minute=settings.server_per_minute, global_per_minute=settings.bot_per_minute)
        self.store = store = open_store(settings)  # the same database the service's forget filter reads
        self.control = Control(store, settings.checkpoint_dir)
        self.forget = ForgetList(store, settings.checkpoint_dir)
        self.feedback = Feedback(store, settings.checkpoint_dir)
        self.presence = Presence(store, settings.checkpoint_dir)
        self.autopost = Autoposter(self)
        self.sync_commands = False  # set by run_bot(sync=True)
        self.owners_checked = False  # on_ready runs again after every reconnect; the lookup need not
        self.dann_group = DannGroup()
        self.tree.add_command(self.dann_group)

    async def setup_hook(self) -> None:
        # override: setup_hook runs at every login (a client re-opened with clear() logs in again),
        # and a second run replaces the cogs rather than failing on them.
        for cog in (Conversation(self), StatusAndFeedback(self), OwnerControls(self), PresenceSettings(self),
                    Learning(self)):
            await self.add_cog(cog, override=True)
        if self.sync_commands:  # after the cogs: they add the commands that are published
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

    async def on_message(self, message: discord.Message) -> None:
        """Nothing: messages are the Conversation cog's. dann has no prefix commands, and the Bot's
        own on_message would look every mention up as one (and log each as not found)."""

    # --- who may do what ---------------------------------------------------------------------

    def is_dann_owner(self, user_id: int) -> bool:
        """Whether this user is one of dann's owners (DANN_OWNER_IDS). Not discord.py's
        `Bot.is_owner`, which asks Discord who owns the application."""
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
        if self.is_dann_owner(user_id):
            return None
        if guild_id is None and not self.settings.answer_dms:
            return "dann answers DMs from its owner only."
        if self.pause_of(guild_id) is not None:
            return "dann is paused for now."
        return None

    # --- generation, for every cog and the autoposter ----------------------------------------

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
        except DannError as error:  # expected: one sentence for the person (paths only in the log)
            if error.public:
                log.error("generating a %s: %s", mode, error)
            return error.for_public(), None
        except Exception:
            log.exception("generating a %s failed", mode)
            return SORRY, None
        text = generation.texts[0]
        # Discord rejects an empty message; the model may end at once.
        return (text if text.strip() else "…"), generation.model_version

    async def remember(self, sent, version: int | None) -> None:
        """Note which model wrote a message just sent, so reactions to it count for that version.
        In a worker thread: the write waits for the disk, and the event loop must not."""
        if version is not None and isinstance(getattr(sent, "id", None), int):
            await asyncio.to_thread(self.feedback.said, sent.id, version)


def create_bot(settings: DiscordSettings | None = None, *, service: GenerationService | None = None) -> DannBot:
    """The bot, not yet connected. Without `service` it makes its own, and starts and stops it
    with the bot; a service passed in (shared with the web page, or a test's) is left to its owner."""
    settings = settings or load_settings(DiscordSettings)
    owns_service = service is None
    if service is None:
        service = service_for(settings)
    return DannBot(settings, service, owns_service=owns_service)


def run_bot(settings: DiscordSettings, sync: bool = False) -> None:
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
