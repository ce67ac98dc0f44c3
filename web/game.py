""""Real or dann?" on the web page: deal a pair (one real post, one dann wrote), take one vote on it.

Opt-in (DANN_WEB_GAME=true), because it shows the person's real posts to anyone who visits. The
real posts come from the served version itself, never from the export (the web page never sees
it): the trainer publishes each version with the posts that may be shown to anyone
(lstm/postindex.py), and the game deals only its validation posts:
- dann never learned from them: they are the newest `val_fraction` of the export, split as that
  model was trained;
- never a private message, even when DMs were trained on, nor a post that held a forgotten phrase
  or a blocked term when the version was published;
- each is checked again against today's forget list and blocklist before it is dealt, and one
  longer than dann may write is left out (a cut post would give itself away).

One vote per visitor and pair: a visitor is a random id in an HttpOnly cookie, signed by the server;
each pair is dealt to one visitor, remembered with which side is real, and takes that visitor's vote
once. The votes go to dann/serving/votes.py's Votes, per model version.
"""

import asyncio
import collections
import dataclasses
import hmac
import logging
import random
import secrets
import threading

from dann.serving.service import NotReady
from dann.serving.votes import Votes
from dann.state import StateError
from dann.voice.bestof import SAFE_LINE
from dann.voice.request import GenerationRequest
from lstm.errors import DannError

log = logging.getLogger("dann.web")
MAX_PAIRS = 20_000  # dealt pairs remembered; the oldest unvoted ones are forgotten first
COOKIE = "dann_visitor"


class NoRealPosts(DannError):
    """The game cannot deal: the served version has no validation post that may be shown."""


@dataclasses.dataclass
class Pair:
    visitor: str
    version: int
    real_side: str  # "a" or "b"
    voted: bool = False
    voting: bool = False  # a vote on it is being written


def showable(settings, voice, filters) -> list[str]:
    """The real posts the game may show for `voice` (see the module's docstring)."""
    if voice.posts is None:
        raise NoRealPosts(f"model version {voice.version} was published without the posts the game may show; "
                          "the next training run publishes a version with them")
    posts = [text for text in voice.posts.showable(settings.max_chars)
             if filters is None or filters.glued(text) is None]
    if not posts:
        raise NoRealPosts("no validation post of the served model may be shown")
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
        # The served model's split, found first: a version with nothing to show costs no generation.
        # If a newer model arrives before the text is written, its validation posts are newer still,
        # so never in the older model's training split either.
        voice = self.service.current
        if voice is None:
            raise NotReady("dann is still learning: no model has been trained yet")
        posts = await asyncio.to_thread(self.real_posts, voice)
        request = GenerationRequest("post", "", temperature=self.settings.temperature,
                                    seed=self.rng.randrange(2**31))
        result = await self.service.generate(request, client=client)
        generated = result.texts[0]
        if generated == SAFE_LINE:  # not a post of theirs to compare with: draw once more
            result = await self.service.generate(dataclasses.replace(request, seed=self.rng.randrange(2**31)),
                                                 client=client)
            generated = result.texts[0]
        real = self.rng.choice(posts)
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
