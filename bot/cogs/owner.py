"""OwnerControls: stopping dann and taking back what it said.

- /dann pause [minutes] and /dann resume: an owner (DANN_OWNER_IDS) pauses dann everywhere; a
  member with Manage Server pauses it in their server only, and cannot lift an owner's pause.
  While paused dann answers its owners only. The pause is kept in the state store (dann/state/pause.py),
  so it survives a restart.
- /dann forget text: owners only; the phrase is never said again and the next training run
  leaves out every post holding it (dann/voice/forget.py).
- "Delete and forget", a message command on one of dann's messages: its owner, or the person the
  message answered, deletes it; when an owner does, what it said is forgotten too.
"""

import discord
from discord import app_commands
from discord.ext import commands

from bot.commands import OWNER_ONLY, DannCog, at_text, not_a_manager, subcommand, tell
from bot.text import without_quote
from dann.state.pause import ControlError
from dann.voice.forget import MAX_PHRASE_CHARS, ForgetError

MAX_PAUSE_MINUTES = 7 * 24 * 60


def until_text(until: float | None) -> str:
    return "until someone resumes it" if until is None else f"until {at_text(until)}"


def spoken_text(content: str) -> str:
    """What dann said in a message, without the quote `/dann reply` puts above its answer, cut to
    what a forget phrase may hold."""
    said = without_quote(content)
    return said if len(said) <= MAX_PHRASE_CHARS else said[:MAX_PHRASE_CHARS].rsplit(" ", 1)[0]


async def addressee(message: discord.Message) -> int | None:
    """Whom one of dann's messages answered: the user of the slash command, or the author of the
    message it replies to."""
    if message.interaction_metadata is not None:
        return message.interaction_metadata.user.id
    reference = message.reference
    if reference is None or reference.message_id is None:
        return None
    if isinstance(reference.resolved, discord.Message):
        return reference.resolved.author.id
    try:
        return (await message.channel.fetch_message(reference.message_id)).author.id
    except discord.HTTPException:  # deleted since, or out of reach
        return None


class OwnerControls(DannCog):
    """/dann pause, /dann resume and /dann forget, and the "Delete and forget" message command
    (`menu`), which is in the bot's command tree while the cog is loaded. The pause file and the
    forget list are the bot's (`control`, `forget`): the generation service and the other cogs
    read them too."""

    def __init__(self, bot: commands.Bot):
        super().__init__(bot)
        # A context menu cannot be declared in a class body: discord.py takes it built on a bound method.
        self.menu = app_commands.ContextMenu(name="Delete and forget", callback=self.delete_and_forget)

    async def cog_load(self) -> None:
        await super().cog_load()
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)
        await super().cog_unload()

    @subcommand(name="pause", description="dann stops answering (its owner: everywhere; admins: here)")
    @app_commands.describe(minutes="For how long; leave it out to pause until /dann resume")
    async def pause(self, interaction: discord.Interaction,
                    minutes: app_commands.Range[int, 1, MAX_PAUSE_MINUTES] | None = None) -> None:
        if refusal := not_a_manager(self.bot, interaction):
            await tell(interaction, refusal)
            return
        everywhere = self.bot.is_dann_owner(interaction.user.id)
        try:
            until = self.bot.control.pause(None if everywhere else interaction.guild_id, minutes)
        except ControlError as error:
            await tell(interaction, f"Could not pause: {error}")
            return
        where = "everywhere" if everywhere else "in this server"
        await tell(interaction, f"Paused {where} {until_text(until)}. Only the owner gets answers meanwhile.")

    @subcommand(name="resume", description="dann answers again after /dann pause")
    async def resume(self, interaction: discord.Interaction) -> None:
        if refusal := not_a_manager(self.bot, interaction):
            await tell(interaction, refusal)
            return
        owner = self.bot.is_dann_owner(interaction.user.id)
        try:
            ended = [self.bot.control.resume(where) for where in
                     ([None] if owner else []) + ([interaction.guild_id] if interaction.guild_id else [])]
        except ControlError as error:
            await tell(interaction, f"Could not resume: {error}")
            return
        still = self.bot.pause_of(interaction.guild_id)
        if still:
            await tell(interaction, f"dann's owner paused it everywhere {until_text(still['until'])}; only they "
                                    "can resume it.")
        else:
            await tell(interaction, "Resumed: dann answers again." if any(ended) else "dann was not paused.")

    @subcommand(name="forget", description="dann never says this phrase again, and unlearns it")
    @app_commands.describe(text="The phrase; case, accents, punctuation and spacing do not matter")
    async def forget(self, interaction: discord.Interaction, text: str) -> None:
        if not self.bot.is_dann_owner(interaction.user.id):
            await tell(interaction, OWNER_ONLY)
            return
        try:
            added = self.bot.forget.add(text)
        except ForgetError as error:
            await tell(interaction, f"Could not forget that: {error}")
            return
        await tell(interaction, "Forgotten: it is never said from now on, and the next training run leaves out every "
                                "post holding it." if added else "That phrase was forgotten already.")

    async def delete_and_forget(self, interaction: discord.Interaction, message: discord.Message) -> None:
        bot = self.bot
        if bot.user is None or message.author.id != bot.user.id:
            await tell(interaction, "This only works on dann's own messages.")
            return
        owner = bot.is_dann_owner(interaction.user.id)
        if not owner and await addressee(message) != interaction.user.id:
            await tell(interaction, "Only dann's owner, or the person it was answering, can delete this.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            await message.delete()
        except discord.NotFound:
            pass  # someone was quicker; forgetting still makes sense
        except discord.HTTPException as error:
            await interaction.followup.send(f"Discord would not delete it ({error.text or error.status}).",
                                            ephemeral=True)
            return
        note = "Deleted."
        if owner and spoken_text(message.content):
            try:
                bot.forget.add(spoken_text(message.content))
                note = "Deleted and forgotten: dann never says it again, and the next training run unlearns it."
            except ForgetError as error:
                note = f"Deleted, but not forgotten: {error}"
        await interaction.followup.send(note, ephemeral=True)
