"""The /dann slash command group, and what the cogs that fill it share.

    /dann post [temp]        a post in the voice            anyone dann answers here          Conversation
    /dann reply text [temp]  a reply to a text                                                Conversation
    /dann status             which model is served           anyone (only the asker sees it)  StatusAndFeedback
    /dann about              what dann is and whose voice    anyone, in public                StatusAndFeedback
    /dann pause [minutes]    stop answering (owner: everywhere; Manage Server: this server)   OwnerControls
    /dann resume             end that pause                                                   OwnerControls
    /dann forget text        never say a phrase again        owners                           OwnerControls
    /dann autopost channel every   post every 6h (or "off")     owners, Manage Server         PresenceSettings
    /dann schedules          this server's autoposts, chime-ins and quiet hours               PresenceSettings
    /dann quiet [from to tz] no autoposts or chime-ins in those hours (none given: off)       PresenceSettings
    /dann chime channel chance     answer unprompted now and then (DANN_READ_MESSAGES)        PresenceSettings
    Delete and forget        on one of dann's messages: the owner, or the person it answered  OwnerControls

The cogs are in bot/cogs/. In discord.py an app_commands.Group belongs to one cog at most, and
every one of these concerns has /dann subcommands: so the group belongs to the bot (DannGroup),
and each cog (a DannCog) adds the methods it marks with @subcommand to it while it is loaded.

Every permission is checked in the handler: Discord's own command permissions can be changed by
any server admin, so they are a convenience, not the rule.
"""

import datetime

import discord
from discord import app_commands
from discord.ext import commands

from bot.text import NO_PINGS, clip, wait_notice

OWNER_ONLY = "Only dann's owner can do that."
MANAGERS_ONLY = "Only dann's owner, or an admin of this server (Manage Server), can do that."
SERVERS_ONLY = "That is set per server: use it in a server, not in a DM."

# The subcommands in the order Discord is sent them, whichever cog is added first: the same cogs
# always give the same command tree, so a sync never reorders what people see.
SUBCOMMANDS = ("post", "reply", "status", "about", "pause", "resume", "autopost", "schedules", "quiet", "chime",
               "forget")


class DannGroup(app_commands.Group):
    """/dann, the bot's one slash command group. It holds no commands of its own: each cog adds its
    subcommands while it is loaded (DannCog) and takes them out when it is removed."""

    def __init__(self):
        super().__init__(name="dann", description="dann speaks in one person's voice")

    def add_command(self, command: app_commands.Command | app_commands.Group, /, *, override: bool = False) -> None:
        super().add_command(command, override=override)
        # A group keeps its subcommands in the order they were added: re-adding them all keeps SUBCOMMANDS'.
        ordered = sorted(self.commands, key=lambda child: SUBCOMMANDS.index(child.name)
                         if child.name in SUBCOMMANDS else len(SUBCOMMANDS))
        for child in ordered:
            self.remove_command(child.name)
        for child in ordered:
            super().add_command(child)


def subcommand(*, name: str, description: str):
    """Marks a DannCog method as the handler of `/dann <name>`. It takes what a method under
    @app_commands.command takes (the cog, the interaction, then the options), and
    @app_commands.describe and @app_commands.rename work under it as they do there."""

    def mark(method):
        method.__dann_subcommand__ = {"name": name, "description": description}
        return method

    return mark


class DannCog(commands.Cog):
    """A cog of DannBot. The bot's shared state (settings, service, cooldown, control, forget list,
    feedback, presence) is reached through `self.bot`; `subcommands` are the /dann subcommands its
    @subcommand methods handle, which are in the bot's /dann group while the cog is loaded."""

    def __init__(self, bot: commands.Bot):
        self.bot = bot
        marked = {attr: value.__dann_subcommand__ for cls in reversed(type(self).__mro__)
                  for attr, value in vars(cls).items() if hasattr(value, "__dann_subcommand__")}
        # A bound method: discord.py passes this cog as the handler's `self`, as for a cog's own commands.
        self.subcommands = [app_commands.Command(callback=getattr(self, attr), parent=bot.dann_group, **spec)
                            for attr, spec in marked.items()]

    async def refused(self, interaction: discord.Interaction) -> bool:
        """Answers (only to the asker) and returns True when dann may not speak for them here, or
        the cooldown holds."""
        refusal = self.bot.refusal(interaction.user.id, interaction.guild_id)
        if refusal:
            await tell(interaction, refusal)
            return True
        wait = self.bot.cooldown.try_acquire(interaction.user.id, interaction.channel_id or interaction.user.id,
                                             interaction.guild_id)
        if wait:
            await tell(interaction, wait_notice(wait))  # only the asker sees it: no channel to flood
        return bool(wait)

    async def cog_load(self) -> None:
        for command in self.subcommands:
            self.bot.dann_group.add_command(command)

    async def cog_unload(self) -> None:
        for command in self.subcommands:
            self.bot.dann_group.remove_command(command.name)


def may_manage(bot: commands.Bot, interaction: discord.Interaction) -> bool:
    """An owner, or a member allowed to manage this server (not in a DM)."""
    if bot.is_dann_owner(interaction.user.id):
        return True
    return interaction.guild_id is not None and bool(interaction.permissions.manage_guild)


def not_a_manager(bot: commands.Bot, interaction: discord.Interaction) -> str | None:
    """Why this person may not pause, resume or schedule dann here, or None."""
    if not bot.guild_allowed(interaction.guild_id):
        return bot.refusal(interaction.user.id, interaction.guild_id)
    return None if may_manage(bot, interaction) else MANAGERS_ONLY


def at_text(when: float) -> str:
    """A moment every reader sees in their own zone, and how far off it is."""
    moment = datetime.datetime.fromtimestamp(when, datetime.UTC)
    return f"{discord.utils.format_dt(moment, 't')} ({discord.utils.format_dt(moment, 'R')})"


async def tell(interaction: discord.Interaction, text: str) -> None:
    """A short answer only the asker sees."""
    await interaction.response.send_message(clip(text), ephemeral=True, allowed_mentions=NO_PINGS)
