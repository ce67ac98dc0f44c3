"""The person's words, as tables the sampler uses to spell only words they have written.

A character model at a few minutes of CPU training makes up words ("elocolate", "persocal"), and
made-up words are what most gives its posts away to a reader or a classifier
(docs/reply-quality.md#known-words). With a lexicon, every step of sampling may only choose a
character that keeps the current word a prefix of some word the person used, and may end a word
(with a space, punctuation, an emoji or <eos>) only where it is a whole word of theirs. The model
still chooses which word and what comes around it; the lexicon only takes away the misspellings.

Words are what trainer/fidelity.py counts: runs of letters with inner apostrophes ("don't"),
compared lowercased; digits, "_" and every other character are boundaries. A word is a path in a
trie; the sampler tracks one trie node per row:

- `next[node, column]` is the node after a letter (or an apostrophe), -1 when that would spell no
  known word. An apostrophe with no known word after it closes the word when the word is complete
  ("the dogs' bone" with a quote), and is a plain character outside words ("'tis").
- `complete[node]` says whether a boundary may follow: the node ends a known word, or is outside
  any word.
- Node 0 is outside any word. The last two are CLOSED, just after an apostrophe that closed a
  word (no letter may follow), and UNKNOWN, inside a word the lexicon does not know: only a
  prompt can lead there (a prompt is read as written), and the rest of that word is left to the
  model.

Memory is nodes x letters x 4 bytes, so the trie keeps the most frequent words up to MAX_NODES
nodes, and no more than fit in MAX_TABLE_BYTES; a word left out counts as unknown like a coined
one.
"""

import collections
import dataclasses
import functools
import re
from collections.abc import Iterable

import jax.numpy as jnp
import numpy as np

from lstm.vocab import SPECIALS, Vocab, normalize

WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")  # as trainer/fidelity.py counts words
LETTER = re.compile(r"[^\W\d_]")
APOSTROPHES = ("'", "\u2019")
MAX_NODES = 250_000
MAX_TABLE_BYTES = 64 << 20  # the node table's cap, whatever the alphabet: a bot's memory is small


def words_of(text: str) -> list[str]:
    """The words of `text` as the trie spells them (see _key)."""
    return ["".join(map(_key, w)) for w in WORD.findall(normalize(text).replace("\u2019", "'"))]


@dataclasses.dataclass(frozen=True, eq=False)
class Lexicon:
    words: tuple[str, ...]  # most frequent first
    letters: tuple[str, ...]  # column -> lowercase letter; "'" stands for both apostrophes
    next: np.ndarray  # (nodes, letters) int32
    complete: np.ndarray  # (nodes,) bool
    column: np.ndarray  # (vocab,) int32: a token's letter column, -1 for a boundary

    @property
    def unknown(self) -> int:
        return len(self.complete) - 1

    @classmethod
    def build(cls, texts: Iterable[str], vocab: Vocab, max_nodes: int = MAX_NODES) -> "Lexicon":
        counts = collections.Counter(w for text in texts for w in words_of(text))
        return cls.of_words(sorted(counts, key=lambda w: (-counts[w], w)), vocab, max_nodes)

    @classmethod
    def of_words(cls, words: list[str], vocab: Vocab, max_nodes: int = MAX_NODES) -> "Lexicon":
        """The trie of `words` (most frequent first) over the letters of `vocab`, until it has
        `max_nodes` nodes. A word with a letter the vocabulary lacks can never be spelled, so it
        is left out."""
        letters = sorted({_key(c) for c in vocab.chars if _key(c)} | {"'"})
        col = {c: i for i, c in enumerate(letters)}
        max_nodes = min(max_nodes, MAX_TABLE_BYTES // (4 * len(letters)))
        children: list[dict[int, int]] = [{}]
        ends = [True]  # node 0, outside a word, takes a boundary
        kept = []
        for word in words:
            if any(c not in col for c in word):
                continue
            if len(children) + len(word) + 2 > max_nodes:  # at most len(word) new ones, + CLOSED and UNKNOWN
                break
            node = 0
            for c in word:
                if col[c] not in children[node]:
                    children[node][col[c]] = len(children)
                    children.append({})
                    ends.append(False)
                node = children[node][col[c]]
            ends[node] = True
            kept.append(word)
        closed, unknown = len(children), len(children) + 1
        table = np.full((unknown + 1, len(letters)), -1, np.int32)
        for node, kids in enumerate(children):
            for c, child in kids.items():
                table[node, c] = child
        complete = np.array([*ends, True, True])
        a = col["'"]
        inner = table[:closed, a]
        # An apostrophe after a whole word may close it (a closing quote) when no known word goes
        # on; no letter may follow then, or "cab'fade" would be one made-up word. Outside a word
        # it is a plain character ("'tis" is a quote and "tis")...
        table[:closed, a] = np.where(inner >= 0, inner, np.where(complete[:closed], closed, -1))
        table[0, a] = table[closed, a] = 0
        # ... and where one does go on ("dog'" on the way to "dog's"), the word is whole so far.
        complete[inner[(inner > 0) & complete[:closed]]] = True
        table[unknown] = unknown
        column = np.full(len(vocab), -1, np.int32)
        for i, c in enumerate(vocab.chars):
            if _key(c):
                column[len(SPECIALS) + i] = col[_key(c)]
        return cls(tuple(kept), tuple(letters), table, complete, column)

    @functools.cached_property
    def on_device(self) -> dict:
        """The tables as the sampler takes them, copied to the device once."""
        return {"next": jnp.asarray(self.next), "complete": jnp.asarray(self.complete),
                "column": jnp.asarray(self.column)}

    def to_json(self) -> list[str]:
        """What a checkpoint stores: the words, most frequent first. The tables are rebuilt from
        them, so they never disagree with the vocabulary they are loaded with."""
        return list(self.words)

    def step(self, node: int, char: str) -> int:
        """The node after `char`, -1 when the sampler may not write it there."""
        key = _key(char)
        if not key:
            return 0 if self.complete[node] else -1
        return int(self.next[node, self.letters.index(key)]) if key in self.letters else -1

    def accepts(self, text: str) -> bool:
        """Whether the sampler could have written `text` from outside a word."""
        node = 0
        for char in normalize(text):
            node = self.step(node, char)
            if node < 0:
                return False
        return bool(self.complete[node])


def _key(char: str) -> str:
    """The trie letter of a character: lowercased, "'" for either apostrophe; "" for a boundary."""
    if char in APOSTROPHES:
        return "'"
    if not LETTER.fullmatch(char):
        return ""
    low = char.lower()
    return low if len(low) == 1 else char
