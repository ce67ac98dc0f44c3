"""Reply chains: the messages above a Discord reply, each answering the one before.

A reply to one of dann's messages addresses dann as a mention does, and the chain above a message
dann answers is the conversation its answer is primed with (oldest first, the way posts follow
each other in training). The chain also caps a conversation: once it holds DANN_MAX_THREAD_DEPTH
of dann's messages, dann answers it no more, so that two bots replying to each other stop.

Discord sends the message a reply answers with the reply; the ones above it come from
discord.py's message cache or, failing that, one API call each.
"""

import dataclasses

import discord

from bot.text import prompt_text

MAX_WALK = 50  # messages followed up one chain at most, whatever the settings: each may be an API call


@dataclasses.dataclass(frozen=True)
class Chain:
    texts: tuple[str, ...]  # the messages above, oldest first, within the bounds (empty ones left out)
    dann_messages: int  # dann's messages among all those above (counted up to the depth cap)


def parent_now(message: discord.Message) -> discord.Message | None:
    """The message this one replies to, if Discord sent it along or it is cached (no API call)."""
    reference = message.reference
    if reference is None or reference.message_id is None or is_forward(reference):
        return None
    if isinstance(reference.resolved, discord.Message):
        return reference.resolved
    return reference.cached_message


async def parent(message: discord.Message) -> discord.Message | None:
    """The message this one replies to, or None (not a reply, deleted, out of reach)."""
    found = parent_now(message)
    reference = message.reference
    if found is not None or reference is None or reference.message_id is None or is_forward(reference):
        return found
    if isinstance(reference.resolved, discord.DeletedReferencedMessage):
        return None
    try:
        return await message.channel.fetch_message(reference.message_id)
    except (discord.HTTPException, AttributeError):  # deleted, no access, or a channel without history
        return None


def is_forward(reference: discord.MessageReference) -> bool:
    """A forwarded message also carries a reference, but it is no reply."""
    return getattr(reference, "type", None) == discord.MessageReferenceType.forward


def spoken(message: discord.Message, me: discord.abc.User | None, max_chars: int) -> str:
    """A message's words as the model should read them: without mentions and markup, and for
    dann's own messages without the quote `/dann reply` puts above its answer."""
    content = message.content
    if me is not None and message.author.id == me.id:
        content = "\n".join(line for line in content.splitlines() if not line.startswith("> "))
    return prompt_text(content, max_chars)


async def chain_above(message: discord.Message, me: discord.abc.User | None, *, max_messages: int,
                      max_chars: int, depth_cap: int) -> Chain:
    """The chain of replies above `message` (not `message` itself): its texts for priming, at
    most `max_messages` of them and `max_chars` characters (the nearest kept), and how many of dann's
    messages it holds, counted up to `depth_cap`."""
    texts: list[str] = []
    chars, dann_messages, walked = 0, 0, 0
    current = message
    while walked < MAX_WALK:
        above = await parent(current)
        if above is None:
            break
        walked += 1
        if me is not None and above.author.id == me.id:
            dann_messages += 1
            if dann_messages >= depth_cap:
                break
        if len(texts) < max_messages and chars < max_chars:
            text = spoken(above, me, max_chars - chars)
            if text:
                texts.append(text)
                chars += len(text)
        current = above
    return Chain(tuple(reversed(texts)), dann_messages)
