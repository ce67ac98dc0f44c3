"""StatusAndFeedback: what dann tells about itself, and what people tell it back.

- /dann status: the served model (version, training, quality), the 👍/👎 its messages got, and
  how often it fooled the web page's "Real or dann?" game; only the asker sees it.
- /dann about: what dann is, whose voice it imitates and who runs it, in public.
- 👍 and 👎 on dann's messages count for the model version that wrote them (feedback.py).
"""

import asyncio

import discord
from discord.ext import commands

from bot.commands import DannCog, subcommand, tell
from bot.text import NO_PINGS, STILL_LEARNING, clip, discord_time
from dann.serving.status import about, render_text
from dann.serving.votes import Votes, shown_tally
from dann.state.posts import PostStore


class StatusAndFeedback(DannCog):
    """/dann status (`status_text`) and /dann about, and the reaction listeners that count 👍/👎 on
    dann's messages in the bot's `feedback`. `game_votes` are the web page's "Real or dann?"
    votes (dann/serving/votes.py), read for the status."""

    def __init__(self, bot: commands.Bot):
        super().__init__(bot)
        self.game_votes = Votes(bot.store)  # the web page counts them
        self.posts = PostStore(bot.store)  # the person's posts that arrived since (learning.py, dann learn)

    def status_text(self) -> str:
        bot = self.bot
        status = bot.service.status()
        if status is None:
            return STILL_LEARNING
        votes = bot.feedback.of(status["version"])
        status = {**status, "game": shown_tally(bot.settings, self.game_votes, status["version"]),
                  "new_posts": self.posts.since_trained(status.get("trained_at"))}
        return (render_text(status, bold=lambda text: f"**{text}**", when=discord_time)
                + f"\nReactions to this version's messages: 👍 {votes['up']}, 👎 {votes['down']}.")

    @subcommand(name="status", description="Which model dann is using, when it was trained, how good it is")
    async def status(self, interaction: discord.Interaction) -> None:
        await tell(interaction, self.status_text())

    @subcommand(name="about", description="What dann is, whose voice it imitates, and who runs it")
    async def about(self, interaction: discord.Interaction) -> None:
        if await self.refused(interaction):  # it speaks in public: the pause and the cooldowns hold
            return
        self.bot.cooldown.release(interaction.user.id)  # answered at once, nothing in flight
        settings = self.bot.settings
        owners = settings.owner_name or ", ".join(f"<@{owner}>" for owner in settings.owner_ids)
        text = about(self.bot.service.status(), voice=settings.voice_name, owner=owners or None)
        # In public: anyone in the channel should be able to see that this is a bot, and whose.
        await interaction.response.send_message(clip(text), allowed_mentions=NO_PINGS)

    # Raw events: a reaction to a message no longer in discord.py's cache counts too. Only 👍 and
    # 👎 on a message the bot noted with `remember` are votes (feedback.py). Counted in a worker
    # thread: the write waits for the disk, and the event loop must not.

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if self.bot.user is not None and payload.user_id != self.bot.user.id:
            await asyncio.to_thread(self.bot.feedback.react, payload.message_id, str(payload.emoji), +1)

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        if self.bot.user is not None and payload.user_id != self.bot.user.id:
            await asyncio.to_thread(self.bot.feedback.react, payload.message_id, str(payload.emoji), -1)
