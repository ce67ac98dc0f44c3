""""Real or dann?" on the web page: deal a pair (one real post, one dann wrote), take one vote on it.

Opt-in (DANN_WEB_GAME=true), because it shows the person's real posts to anyone who visits. Which
posts may be shown:
- only the served model's validation split: the newest `val_fraction` of the export, split as the
  model was trained (its TrainConfig is in the checkpoint), so dann is never compared with a post it
  learned from. As an export only grows, the newest posts of a later export are never in an older
  model's training split either;
- never a private message, whatever DANN_INCLUDE_DMS says: the split is taken as the model was
  trained, then only posts that are also in the export read without DMs are kept;
- never a post with a forgotten phrase (it is gone from the export as read), one the filters refuse
  (the blocklist), or one longer than dann may write (a cut post would give itself away).

One vote per visitor and pair: a visitor is a random id in an HttpOnly cookie; each pair is dealt to
one visitor, remembered with which side is real, and takes that visitor's vote once. The votes go to
dann/serving/votes.py's Votes, per model version.
"""

import asyncio
import collections
import dataclasses
import hmac
import logging
import random
import secrets
import threading

from dann.serving.votes import Votes
from dann.state import StateError
from dann.voice.bestof import SAFE_LINE
from dann.voice.forget import forget_list
from dann.voice.request import GenerationRequest
from lstm.errors import DannError

log = logging.getLogger("dann.web")
MAX_PAIRS = 20_000  # dealt pairs remembered; the oldest unvoted ones are forgotten first
COOKIE = "dann_visitor"


class NoRealPosts(DannError):
    """The game cannot deal: no export to read, or nothing in its validation split may be shown."""


@dataclasses.dataclass
class Pair:
    visitor: str
    version: int
    real_side: str  # "a" or "b"
    voted: bool = False
    voting: bool = False  # a vote on it is being written


def showable(settings, voice, filters) -> list[str]:
    """The real posts the game may show for `voice` (see the module's docstring)."""
    from trainer.batches import split_records
    from trainer.retrain import read_export

    if settings.export_path is None:
        raise NoRealPosts("the game needs the export (DANN_EXPORT_PATH) to show real posts from")
    forget = forget_list(settings)
    trained_on = read_export(settings.export_path, forget, include_dms=settings.include_dms)
    _, val = split_records(trained_on.records, voice.record.config.train.val_fraction)
    public = {(r.source_id, r.text) for r in read_export(settings.export_path, forget).records}
    posts = [r.text for r in val if (r.source_id, r.text) in public and len(r.text) <= settings.max_chars
             and (filters is None or filters.verdict(r.text) is None)]
    if not posts:
        raise NoRealPosts("no post of the export's validation split may be shown")
    return posts


def signed(key: bytes, visitor: str) -> str:
    """The cookie for `visitor`: its id and the server's signature of it, so that a client cannot
    make up ids (and with them, votes)."""
    return f"{visitor}.{hmac.new(key, visitor.encode(), 'sha256').hexdigest()[:32]}"


def verified(key: bytes, cookie: str) -> str | None:
    """The visitor id of a cookie this server signed, or None."""
    visitor = cookie.partition(".")[0]
    return visitor if visitor and len(cookie) <= 128 and hmac.compare_digest(signed(key, visitor), cookie) else None


class Game:
    def __init__(self, settings, service, votes: Votes, *, rng: random.Random | None = None):
        self.settings, self.service, self.votes = settings, service, votes
        self.rng = rng or random.SystemRandom()
        self.pairs: collections.OrderedDict[str, Pair] = collections.OrderedDict()
        self.cast: collections.Counter[tuple[str, int]] = collections.Counter()  # (client, version) -> votes
        self.key = votes.store.secret("visitor")  # signs visitor ids: the same in every replica
        self._real: tuple[tuple, list[str]] | None = None  # ((model version, forget list), showable posts)
        self._lock = threading.Lock()

    def real_posts(self, voice) -> list[str]:
        """The showable posts, found again for a new model and whenever the forget list changes:
        a phrase forgotten a moment ago must not be shown at the next deal."""
        forget = self.service.filters.forget if self.service.filters else None
        key = (voice.version, forget.digest() if forget else "")
        if self._real is None or self._real[0] != key:
            self._real = (key, showable(self.settings, voice, self.service.filters))
        return self._real[1]

    async def deal(self, visitor: str, client: str = "") -> dict:
        """A new pair for `visitor` (queued fairly as `client`): {"pair", "a", "b", "model_version"}.
        Raises NotReady (no model), Busy (the service's queue is full) or NoRealPosts."""
        request = GenerationRequest("post", "", temperature=self.settings.temperature,
                                    seed=self.rng.randrange(2**31))
        result = await self.service.generate(request, client=client)
        generated = result.texts[0]
        if generated == SAFE_LINE:  # not a post of theirs to compare with: draw once more
            result = await self.service.generate(dataclasses.replace(request, seed=self.rng.randrange(2**31)),
                                                 client=client)
            generated = result.texts[0]
        # The served model's split: if a newer one arrived meanwhile, its validation posts are newer
        # still, so never in the older model's training split either.
        real = self.rng.choice(await asyncio.to_thread(self.real_posts, self.service.current))
        real_side = self.rng.choice("ab")
        pair_id = secrets.token_urlsafe(12)
        with self._lock:
            self.pairs[pair_id] = Pair(visitor, result.model_version, real_side)
            while len(self.pairs) > MAX_PAIRS:
                self.pairs.popitem(last=False)
        a, b = (real, generated) if real_side == "a" else (generated, real)
        return {"pair": pair_id, "a": a, "b": b, "model_version": result.model_version}

    def vote(self, visitor: str, pair_id: str, pick: str, client: str = "") -> tuple[int, dict | str]:
        """(HTTP status, answer): 200 with whether the pick was right and the version's tally, or
        an error status with one line saying why the vote does not count. `client` (an address)
        may cast at most DANN_WEB_GAME_VOTES_PER_CLIENT votes on one version."""
        with self._lock:
            pair = self.pairs.get(pair_id)
            if pair is None or pair.visitor != visitor:
                return 404, "no such pair for this visitor: ask for a new one"
            if pair.voted or pair.voting:
                return 409, "you have already voted on this pair"
            if self.cast[(client, pair.version)] >= self.settings.web_game_votes_per_client:
                return 429, "you have voted on this model version as often as one visitor's votes count"
            pair.voting = True
        fooled = pick != pair.real_side
        try:  # counted first: the pair is marked only once its vote is saved
            tally = self.votes.add(pair.version, fooled)
        except StateError as error:
            log.error("a vote could not be saved: %s", error)
            with self._lock:
                pair.voting = False
            return 503, "your vote could not be counted just now; try again in a minute"
        with self._lock:
            pair.voted, pair.voting = True, False
            self.cast[(client, pair.version)] += 1
        return 200, {"correct": not fooled, "real": pair.real_side, "model_version": pair.version, "tally": tally}
