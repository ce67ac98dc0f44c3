"""The posts a served text can be traced back to: "why did you say that?", and the game's real posts.

The trainer builds this at publish time from the posts that may be shown to anyone: never a private
message (even when DMs were trained on), never a post holding a forgotten phrase or a blocked term.
It holds those posts with their source ids, which of them were validation posts (the only ones the
"Real or dann?" game may show: dann never learned from them), and a positional word index:

- `tokens`: every post's words (as words_of in lstm/copyindex.py reads them) as word ids, post
  after post, with one empty slot after each post so that no run of words crosses two posts;
- `order` and `bounds`: the positions of each word id, in order, so that finding where a word
  occurs is a slice, not a scan;
- `df`: in how many posts each word occurs.

`nearest` finds the posts a text is closest to. Candidates are the posts sharing a rare word with it
(in at most RARE_SHARE of the posts, or two; common words say nothing about where a text came from),
scored by the sum of the shared words' inverse document frequencies; the best CANDIDATES are then
ranked by that score times (1 + the Dice coefficient of their character 4-grams), so that shared
spellings, word pieces and punctuation break ties between posts that share the same rare words.

`longest_run` finds the longest run of consecutive words the text shares with any one post, walking
the text's words once: a run ending at corpus position p extends the run that ended at p - 1.
"""

import dataclasses
import math
from collections.abc import Callable, Iterable

import numpy as np

from lstm.copyindex import words_of
from lstm.vocab import normalize

RARE_SHARE = 0.05  # a word in more than this share of the posts is not rare
CANDIDATES = 50  # posts re-ranked by their character 4-grams
GRAM = 4


@dataclasses.dataclass(frozen=True)
class Post:
    id: str | None  # where it came from: the export's id (a tweet id, a Discord message id), if it has one
    text: str
    val: bool = False  # a validation post: never trained on


@dataclasses.dataclass(frozen=True)
class Match:
    post: Post
    shared: list[str]  # the rare words it shares with the text, rarest first
    score: float


@dataclasses.dataclass(frozen=True)
class Run:
    words: int  # how many consecutive words the text shares with one post (0: not even one word)
    text: str  # those words, as the text has them (lowercased)
    post: Post | None


def _grams(text: str) -> set[str]:
    text = normalize(text).lower()
    return {text[i : i + GRAM] for i in range(len(text) - GRAM + 1)}


def _dice(a: set[str], b: set[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: numpy arrays do not compare to a bool
class PostIndex:
    posts: list[Post]
    words: list[str]
    tokens: np.ndarray  # int32: word ids, post after post, -1 in the slot after each post
    starts: np.ndarray  # int64, len(posts) + 1: where each post's words begin in `tokens`
    order: np.ndarray  # int32: positions in `tokens`, grouped by word id, ascending within a word
    bounds: np.ndarray  # int64, len(words) + 1: word id w occurs at order[bounds[w]:bounds[w + 1]]
    df: np.ndarray  # int32: posts each word occurs in

    def __post_init__(self):
        object.__setattr__(self, "_ids", {word: i for i, word in enumerate(self.words)})

    @classmethod
    def build(cls, posts: Iterable[Post]) -> "PostIndex":
        posts = list(posts)
        ids: dict[str, int] = {}
        tokens, starts = [], [0]
        for post in posts:
            tokens.extend(ids.setdefault(word, len(ids)) for word in words_of(post.text))
            tokens.append(-1)
            starts.append(len(tokens))
        tokens = np.array(tokens, dtype=np.int32)
        starts = np.array(starts, dtype=np.int64)
        return cls(posts, list(ids), tokens, starts, *cls._derived(tokens, starts, len(ids)))

    @staticmethod
    def _derived(tokens: np.ndarray, starts: np.ndarray, vocabulary: int) -> tuple:
        present = np.flatnonzero(tokens >= 0)
        order = present[np.argsort(tokens[present], kind="stable")].astype(np.int32)
        bounds = np.zeros(vocabulary + 1, dtype=np.int64)
        np.cumsum(np.bincount(tokens[present], minlength=vocabulary), out=bounds[1:])
        post_of = np.searchsorted(starts, present, side="right") - 1
        pairs = np.unique(tokens[present].astype(np.int64) * max(len(starts), 1) + post_of)
        df = np.bincount(pairs // max(len(starts), 1), minlength=vocabulary).astype(np.int32)
        return order, bounds, df

    def __len__(self) -> int:
        return len(self.posts)

    def _where(self, word_id: int) -> np.ndarray:
        return self.order[self.bounds[word_id] : self.bounds[word_id + 1]]

    def _post_of(self, positions: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.starts, positions, side="right") - 1

    def nearest(self, text: str, k: int = 3, allow: Callable[[str], bool] | None = None) -> list[Match]:
        """The `k` posts `text` is closest to, best first; `allow(post text)` may veto any (the
        serving side's forget list and blocklist, which may have grown since this index was built)."""
        known = {self._ids[w] for w in words_of(text) if w in self._ids}
        rare = [w for w in known if self.df[w] <= max(2, RARE_SHARE * len(self.posts))]
        if not rare:
            return []
        idf = {w: math.log(1 + len(self.posts) / self.df[w]) for w in rare}
        scores: dict[int, float] = {}
        shared: dict[int, list[int]] = {}
        for w in rare:
            for post in np.unique(self._post_of(self._where(w))).tolist():
                scores[post] = scores.get(post, 0.0) + idf[w]
                shared.setdefault(post, []).append(w)
        candidates = sorted(scores, key=lambda p: (-scores[p], p))[:CANDIDATES]
        grams = _grams(text)
        ranked = sorted(((scores[p] * (1 + _dice(grams, _grams(self.posts[p].text))), p) for p in candidates),
                        key=lambda pair: (-pair[0], pair[1]))
        found = []
        for score, p in ranked:
            if allow is not None and not allow(self.posts[p].text):
                continue
            rarest = sorted(shared[p], key=lambda w: (self.df[w], self.words[w]))
            found.append(Match(self.posts[p], [self.words[w] for w in rarest], round(score, 3)))
            if len(found) == k:
                break
        return found

    def longest_run(self, text: str) -> Run:
        """The longest run of consecutive words of `text` that also occurs in one post."""
        words = words_of(text)
        best = (0, 0, -1)  # (length, end in `words`, end position in `tokens`)
        ends, lengths = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        for i, word in enumerate(words):
            if word not in self._ids:
                ends, lengths = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
                continue
            here = self._where(self._ids[word]).astype(np.int64)
            grown = np.ones(len(here), dtype=np.int64)
            if len(ends):
                at = np.minimum(np.searchsorted(ends, here - 1), len(ends) - 1)
                follows = ends[at] == here - 1
                grown[follows] += lengths[at[follows]]
            ends, lengths = here, grown
            top = int(np.argmax(grown))
            if grown[top] > best[0]:
                best = (int(grown[top]), i, int(here[top]))
        length, end, position = best
        if not length:
            return Run(0, "", None)
        post = self.posts[int(self._post_of(np.array([position]))[0])]
        return Run(length, " ".join(words[end - length + 1 : end + 1]), post)

    def showable(self, max_chars: int) -> list[str]:
        """The validation posts the game may show: no longer than dann may write (a cut post would
        give itself away)."""
        return [post.text for post in self.posts if post.val and len(post.text) <= max_chars]

    def to_json(self) -> dict:
        """The posts and the vocabulary: the JSON half of what a checkpoint stores."""
        return {"ids": [p.id for p in self.posts], "texts": [p.text for p in self.posts],
                "val": [i for i, p in enumerate(self.posts) if p.val], "words": self.words}

    def arrays(self) -> dict[str, np.ndarray]:
        """The index for an orbax StandardSave item. orbax refuses zero-size arrays: an index of no
        posts is not saved at all (see lstm/checkpoint.py)."""
        return {"tokens": self.tokens.astype(np.int32), "starts": self.starts.astype(np.int64),
                "order": self.order.astype(np.int32), "bounds": self.bounds.astype(np.int64),
                "df": self.df.astype(np.int32)}

    @classmethod
    def from_saved(cls, data: dict, arrays: dict) -> "PostIndex":
        val = set(data["val"])
        posts = [Post(i, t, n in val) for n, (i, t) in enumerate(zip(data["ids"], data["texts"], strict=True))]
        loaded = {name: np.asarray(arrays[name]) for name in ("tokens", "starts", "order", "bounds", "df")}
        if len(loaded["starts"]) != len(posts) + 1 or len(loaded["bounds"]) != len(data["words"]) + 1:
            raise ValueError("post index: its arrays do not match its posts and words (damaged or built differently)")
        return cls(posts, list(data["words"]), **loaded)
