"""DannBot's cogs, one per feature; the bot adds them in its setup_hook.

- Conversation (conversation.py): mentions, replies to dann's messages, DMs and chime-ins;
  /dann post and /dann reply.
- OwnerControls (owner.py): /dann pause, /dann resume, /dann forget and "Delete and forget".
- PresenceSettings (presence.py): /dann autopost, /dann schedules, /dann quiet and /dann chime.
- StatusAndFeedback (status.py): /dann status, /dann about, and 👍/👎 reactions to dann's messages.
- Learning (learning.py): the person's own messages into the post store (DANN_LEARN_FROM_DISCORD),
  /dann learn and /dann backfill.

What they share (settings, the generation service, the cooldown, the pause file, the forget list,
the reaction counts, the presence file and the autoposter) belongs to the bot, and who dann
answers is the bot's to say (`DannBot.refusal`): a cog reaches both through `self.bot`.
"""
