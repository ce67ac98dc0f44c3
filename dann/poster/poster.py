"""`dann poster`: posts in the voice on a schedule to X, Mastodon and Bluesky, and answers mentions.

It runs on the scheduler the Discord autopost uses too (dann/schedule.py's PostingGrid), with
two jobs for each destination:
1. Posts: on the grid since + k * DANN_POSTER_EVERY from the poster's first start, each run moved
   by a jitter of up to DANN_POSTER_JITTER_S. A slot is posted once; after downtime only the latest
   missed slot is posted, not one per slot. A slot in quiet hours (DANN_POSTER_QUIET), or while an owner has paused dann
   everywhere (/dann pause), is skipped; so is a mention that comes while paused.
   A slot that could not be posted (no model yet, busy, the platform down) is tried again every
   DANN_POSTER_POLL_S until the next one comes.
2. Mentions (where the destination answers them), polled every DANN_POSTER_POLL_S: each new one
   gets one reply, primed with its thread, unless its author is marked as a bot or its thread
   already holds DANN_MAX_THREAD_DEPTH of dann's posts.
`dann poster --once` does both once (`Poster.tick`): it posts the latest slot if it is due.
Every text is a generation of the same service and filters as the bot's (copies, blocklist,
forget list), cut to the platform's length.

Failures: a 429 waits until the platform's reset time and retries; a platform that does not
answer is tried again after DANN_POSTER_POLL_S (the poster keeps running); wrong credentials or an account that
is not marked as a bot stop the poster with one line. Until DANN_POSTER_LIVE=true (or with
--dry-run) nothing is sent: what would be posted is printed, and the record stays in memory.
"""

import asyncio
import datetime
import logging
import time

from dann.poster.destination import (
    Destination,
    Forbidden,
    Mention,
    PosterError,
    RateLimited,
    Refused,
    Unauthorized,
    Unreachable,
    neutralised,
)
from dann.poster.record import PosterRecord
from dann.schedule import PostingGrid, is_quiet, parse_interval, parse_quiet_hours, slot_at
from dann.serving.service import Busy, NotReady, service_for
from dann.state import open_store
from dann.state.pause import Control, ControlError
from dann.voice.request import GenerationRequest

log = logging.getLogger("dann.poster")
MAX_RATE_WAIT_S = 15 * 60  # X's windows are 15 minutes; a reset further off is waited out a tick at a time
RATE_RETRIES = 3


class PosterStopped(PosterError):
    """The poster cannot go on (wrong credentials, an account that is not a bot's)."""


class Poster:
    def __init__(self, settings, destinations: list[Destination], service, *, live: bool,
                 clock=time.time, sleep=asyncio.sleep, say=print):
        self.settings = settings
        self.destinations = destinations
        self.service = service
        self.live = live
        store = open_store(settings)
        self.record = PosterRecord(store, settings.checkpoint_dir, persist=live)
        self.pause = Control(store)  # the owner's pause, set from Discord, holds here too
        self.replied_to: dict[tuple[str, str], float] = {}  # (destination, author) -> when last answered
        self.clock = clock
        self.sleep = sleep
        self.say = say  # where a dry run shows what it would send
        self.every_s = parse_interval(settings.poster_every)
        self.quiet = parse_quiet_hours(settings.poster_quiet, settings.poster_timezone)

    # --- the loop ----------------------------------------------------------------------------

    async def start(self) -> None:
        for destination in self.destinations:
            await self.call(destination, destination.check, self.live)
            entry = self.record.of(destination.name)
            if entry["since"] is None:  # the grid starts at the first start, the first post one interval later
                self.record.change(destination.name, since=self.clock(), slot=0)
            log.info("%s: posting every %s%s; %s", destination.name, self.settings.poster_every,
                     "" if self.live else " (dry run: nothing is sent)",
                     "answering mentions" if destination.replies else "not answering mentions")
            if not self.live:  # something to look at at once, not only when the first slot comes
                entry = self.record.of(destination.name)
                first = entry["since"] + ((entry["slot"] or 0) + 1) * self.every_s
                when = datetime.datetime.fromtimestamp(first, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
                self.say(f"[dry run] {destination.name} would post at {when}, for instance: "
                         f"{await self.text(destination, 'post')}")

    async def tick(self) -> None:
        """Everything due now, once: the latest slot if it was not posted, and new mentions."""
        for destination in self.destinations:
            if await self.guarded(self.post_due, destination) and destination.replies:
                await self.guarded(self.answer_mentions, destination)

    async def guarded(self, step, destination: Destination) -> bool:
        """`step(destination)`; False when it failed and should be tried again. Raises PosterStopped."""
        try:
            return await step(destination) is not False
        except Unreachable as error:
            log.warning("%s: %s; trying again in %g s", destination.name, error, self.settings.poster_poll_s)
            return False
        except PosterStopped:
            raise
        except PosterError as error:  # one request refused (a deleted post, a rejected text): skipped
            log.error("%s: %s; skipped", destination.name, error)
            return True

    async def run(self, once: bool = False) -> None:
        while True:  # a platform down at start is waited for, as one down later is
            try:
                await self.start()
                break
            except Unreachable as error:
                if once:
                    raise
                log.warning("%s; trying again in %g s", error, self.settings.poster_poll_s)
                await self.sleep(self.settings.poster_poll_s)
        if once:
            await self.tick()
            return
        stopped = asyncio.get_running_loop().create_future()
        grid = PostingGrid(lambda: datetime.datetime.fromtimestamp(self.clock(), datetime.UTC))

        async def job(step, destination: Destination) -> None:
            try:
                if not await self.guarded(step, destination) and step == self.post_due:
                    retry = f"{destination.name} retry"  # until it is posted, or the next slot comes
                    grid.once(retry, job, [step, destination], after_s=self.settings.poster_poll_s)
            except PosterStopped as error:
                if not stopped.done():
                    stopped.set_exception(error)

        for destination in self.destinations:
            entry = self.record.of(destination.name)
            last = None if not entry["slot"] else entry["since"] + entry["slot"] * self.every_s
            grid.add(f"{destination.name} posts", job, [self.post_due, destination], every_s=self.every_s,
                     since=entry["since"], last=last, jitter_s=self.settings.poster_jitter_s)
            if destination.replies:
                grid.every(f"{destination.name} mentions", job, [self.answer_mentions, destination],
                           self.settings.poster_poll_s)
        grid.start()
        try:
            await stopped
        finally:
            grid.stop()

    # --- calls to a platform -----------------------------------------------------------------

    async def call(self, destination: Destination, function, *args):
        """`function(*args)` in a worker thread, waiting out rate limits. Unauthorized and Refused
        stop the poster; Unreachable goes up to the tick, which tries again later."""
        for attempt in range(RATE_RETRIES + 1):
            try:
                return await asyncio.to_thread(function, *args)
            except RateLimited as error:
                if attempt == RATE_RETRIES:
                    raise Unreachable(f"still rate limited after {RATE_RETRIES} waits") from None
                wait = 60.0 if error.reset_at is None else error.reset_at - self.clock()
                wait = min(MAX_RATE_WAIT_S, max(1.0, wait))
                log.warning("%s: rate limited (%s); waiting %.0f s", destination.name, error, wait)
                await self.sleep(wait)
            except (Unauthorized, Refused) as error:
                raise PosterStopped(f"{destination.name}: {error}") from None
            except Forbidden as error:
                if function == destination.check:  # the account itself is refused: nothing would work
                    raise PosterStopped(f"{destination.name}: {error}") from None
                raise

    # --- the schedule ------------------------------------------------------------------------

    def due(self, destination: Destination, now: float) -> int | None:
        """The latest grid slot, if it has come and was not posted yet, or None. (The jitter is
        the scheduler's: a run comes at its slot plus the jitter.)"""
        entry = self.record.of(destination.name)
        slot = slot_at(now, entry["since"], self.every_s)
        return slot if slot >= 1 and slot > (entry["slot"] or 0) else None

    async def post_due(self, destination: Destination) -> bool:
        """Post the due slot, if any. False when it is due but could not be posted yet."""
        now = self.clock()
        slot = self.due(destination, now)
        if slot is None:
            return True
        paused = self.paused()
        if paused or is_quiet(self.quiet, datetime.datetime.fromtimestamp(now, datetime.UTC)):
            why = "paused by the owner" if paused else "quiet hours"
            log.info("%s: slot %d skipped: %s", destination.name, slot, why)
            self.record.change(destination.name, slot=slot)
            return True
        text = await self.text(destination, "post")
        if text is None:
            return False  # no model yet, or busy: the same slot is tried again
        if self.live:
            post_id = await self.call(destination, destination.post, text)
            log.info("%s: posted %s (slot %d)", destination.name, post_id, slot)
        else:
            self.say(f"[dry run] {destination.name} would post: {text}")
        self.record.change(destination.name, slot=slot)
        return True

    def paused(self) -> bool:
        """Whether an owner has paused dann everywhere; a pause that cannot be read counts as one."""
        try:
            return self.pause.pause_of(None) is not None
        except ControlError as error:
            log.error("%s; posting and answering nothing until it is fixed", error)
            return True

    # --- mentions ----------------------------------------------------------------------------

    async def answer_mentions(self, destination: Destination) -> None:
        entry = self.record.of(destination.name)
        mentions, cursor = await self.call(destination, destination.mentions, entry["cursor"],
                                           self.settings.max_thread_depth)
        for mention in mentions:
            await self.answer(destination, mention)
        if cursor != entry["cursor"]:
            self.record.change(destination.name, cursor=cursor)

    async def answer(self, destination: Destination, mention: Mention) -> None:
        name = destination.name
        if self.record.answered(name, mention.id):
            return
        paused = self.paused()
        if mention.author_is_bot or mention.dann_posts >= self.settings.max_thread_depth or paused:
            why = ("its author is a bot" if mention.author_is_bot else "dann is paused by its owner" if paused
                   else "its thread is at DANN_MAX_THREAD_DEPTH")
            log.info("%s: not answering %s from %s: %s", name, mention.id, mention.author, why)
            self.record.mark_answered(name, mention.id)
            return
        last = self.replied_to.get((name, mention.author))
        if last is not None and self.clock() - last < self.settings.poster_author_cooldown_s:
            log.info("%s: not answering %s from %s: answered them less than DANN_POSTER_AUTHOR_COOLDOWN_S ago",
                     name, mention.id, mention.author)
            self.record.mark_answered(name, mention.id)
            return
        texts = mention.thread + ((mention.text,) if mention.text else ())
        text = await self.text(destination, "reply", texts if len(texts) > 1 else (texts[0] if texts else None),
                               to=mention.author)
        if text is None:
            return  # tried again next tick: the mention is not marked
        if not self.live:
            self.say(f"[dry run] {name} would answer {mention.author} ({mention.id}): {text}")
            self.record.mark_answered(name, mention.id)
            return
        # Marked before it is sent, so that a crash or a lost answer never makes a second reply;
        # unmarked when the platform surely did not take it.
        self.record.mark_answered(name, mention.id)
        try:
            reply_id = await self.call(destination, destination.reply, mention, text)
        except Unreachable:
            self.record.unmark_answered(name, mention.id)
            raise
        self.replied_to[(name, mention.author)] = self.clock()
        log.info("%s: answered %s from %s with %s", name, mention.id, mention.author, reply_id)

    # --- generation --------------------------------------------------------------------------

    async def text(self, destination: Destination, mode: str, context=None, to: str | None = None) -> str | None:
        """A text in the voice for `destination`, its @handles inert but for `to`'s (the author
        replied to); None when there is no model yet or it is busy."""
        max_chars = min(self.settings.max_chars, destination.max_chars)
        try:
            generation = await self.service.generate(GenerationRequest(
                mode, context=context, temperature=self.settings.temperature, max_chars=max_chars),
                client=f"poster:{destination.name}")
        except (NotReady, Busy) as error:
            log.info("%s: nothing to say yet (%s)", destination.name, type(error).__name__)
            return None
        text = neutralised(generation.texts[0].strip(), keep=to)
        return text[:max_chars] if text else None


def destinations_for(settings) -> list[Destination]:
    """Each platform whose credentials are set, or a PosterError saying what to set."""
    from dann.poster.bluesky import BlueskyDestination
    from dann.poster.mastodon import MastodonDestination
    from dann.poster.x import KEYS, XDestination

    found = []
    if any(getattr(settings, key) is not None for key in KEYS):
        found.append(XDestination(settings))
    if settings.mastodon_url or settings.mastodon_token is not None:
        found.append(MastodonDestination(settings))  # which says what is missing, if anything
    if settings.bluesky_handle or settings.bluesky_app_password is not None:
        if not (settings.bluesky_handle and settings.bluesky_app_password is not None):
            raise PosterError("Bluesky needs both DANN_BLUESKY_HANDLE and DANN_BLUESKY_APP_PASSWORD")
        found.append(BlueskyDestination(settings))
    if not found:
        raise PosterError("no destination is set up: set the DANN_X_*, DANN_MASTODON_* or DANN_BLUESKY_* "
                          "settings of at least one (see .env.example)")
    return found


def run_poster(settings, *, live: bool, once: bool = False) -> None:
    """`dann poster`: until interrupted (or one round with `once`). Raises PosterError (one line)
    for a setting or a platform that stops it."""
    destinations = destinations_for(settings)

    async def main():
        service = service_for(settings)
        await service.start()
        try:
            await Poster(settings, destinations, service, live=live).run(once=once)
        finally:
            await service.stop()

    if not live:
        log.info("dry run: nothing is sent (DANN_POSTER_LIVE=true posts for real)")
    asyncio.run(main())
