"""Copy filter: reject generated text that repeats a long span of the training corpus verbatim.

A char-RNN that has memorised its corpus will sometimes replay a sentence of it word for word,
which reads as plagiarism of the person it imitates. A candidate "copies" if it contains either

- `words` (default 7) consecutive words that occur consecutively in one corpus text, or
- `chars` (default 40) consecutive characters that occur verbatim in one corpus text.

Spans never cross from one corpus text (post) into the next.

Words: the text is NFC-normalised (as in lstm/vocab.py), lowercased, the typographic apostrophe
U+2019 becomes ', and words are `re.findall(r"\\w+(?:'\\w+)*")`: runs of letters, digits and _,
with inner apostrophes kept ("don't" is one word). So case, punctuation and whitespace between
words do not matter: "I WILL not -- go" has the words of "i will not, go". Characters: exact code
points after NFC, so a decomposed "e" + U+0301 matches a precomposed "é".

The index is built once, at training time, and stores only sorted unique 64-bit hashes: one per
word `words`-gram and one per `chars`-character window of the corpus. A check hashes the
candidate's own windows (at most a few hundred) and looks them up with np.searchsorted: no scan
of the corpus, well under a millisecond.

Hashing (scheme "poly64-v1"): each word is hashed with blake2b (8 bytes, stable across processes,
unlike the salted built-in hash()); each code point is mixed with splitmix64. A window of values
v0..v(w-1) hashes to the polynomial v0*B^(w-1) + ... + v(w-1) mod 2^64 with the odd constant B,
computed for all windows at once with `w` vectorised uint64 passes that wrap around on overflow.
Mixing the inputs first makes differences between windows look random, so two different
windows collide with probability about 2^-64.

Collisions: with N stored hashes, one lookup is a false hit with probability N / 2^64. A
1 M-character corpus stores about 1.2 M hashes and a 300-character candidate makes at most about
261 char + 54 word lookups: 315 * 1.2e6 / 1.8e19 = 2e-11 per candidate. Even a 100 MB corpus
and a million candidates give about 2e-3 expected false rejections in total: negligible.

Memory: 8 bytes per char window (one per corpus character, fewer after removing duplicates) plus
8 bytes per word window (about one per 5-6 characters), so at most about 9.5 bytes per corpus
character: ~10 MB for 1 MB of posts. Building needs roughly 50 bytes per corpus character at its
peak (code points, hashes, the window mask and the sort in np.unique).
"""

import dataclasses
import hashlib
import re
from collections.abc import Iterable

import numpy as np

from lstm.vocab import normalize

SCHEME = "poly64-v1"  # stored in settings(): an index hashed differently must not load silently
_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd, so multiplying by it is a bijection mod 2^64
_WORD = re.compile(r"\w+(?:'\w+)*")


def words_of(text: str) -> list[str]:
    """The word tokens the word rule compares: lowercased, NFC, ' and U+2019 treated alike."""
    return _WORD.findall(normalize(text).lower().replace("\u2019", "'"))


def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


def _code_points(text: str) -> np.ndarray:
    # One uint32 per code point, as len() counts them; surrogatepass keeps a stray lone surrogate.
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads neighbouring code points over all 64 bits."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _window_hashes(values: np.ndarray, width: int) -> np.ndarray:
    """Polynomial hash mod 2^64 of every run of `width` consecutive values (uint64 in, uint64 out)."""
    count = len(values) - width + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint64)
    hashes = values[:count].copy()
    with np.errstate(over="ignore"):  # uint64 wraparound is the "mod 2^64"
        for j in range(1, width):
            hashes *= _BASE
            hashes += values[j : j + count]
    return hashes


def _within_one_text(text_ids: np.ndarray, width: int) -> np.ndarray:
    """Mask of the windows of a concatenation whose first and last element are in the same text."""
    count = len(text_ids) - width + 1
    if count <= 0:
        return np.zeros(0, dtype=bool)
    return text_ids[:count] == text_ids[width - 1 :]


def _first_hit(table: np.ndarray, queries: np.ndarray) -> int | None:
    """Position of the first query that is in the sorted array `table`, or None."""
    if not len(table) or not len(queries):
        return None
    where = np.minimum(np.searchsorted(table, queries), len(table) - 1)
    hits = np.flatnonzero(table[where] == queries)
    return int(hits[0]) if hits.size else None


def _check_sizes(words, chars) -> None:
    if not isinstance(words, int) or words < 2:
        raise ValueError(
            f"copy filter: words must be an integer >= 2 (a run of 1 word is any common word), not {words!r}"
        )
    if not isinstance(chars, int) or chars < 8:
        raise ValueError(f"copy filter: chars must be an integer >= 8 (shorter runs match by chance), not {chars!r}")


def _sorted_unique(name: str, array) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype not in (np.int64, np.uint64) or array.ndim != 1:
        raise ValueError(
            f"copy index {name} must be a 1-D int64/uint64 array, got {array.dtype}{list(array.shape)}"
            " (restore it as numpy, not as jax arrays, which are 32-bit without jax_enable_x64)"
        )
    array = array.view(np.uint64)
    if len(array) > 1 and not np.all(array[1:] > array[:-1]):
        raise ValueError(f"copy index {name} is not sorted and unique: damaged or built differently")
    return array


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: comparing numpy arrays with == is not a bool
class CopyIndex:
    words: int
    chars: int
    word_hashes: np.ndarray  # sorted unique uint64: every word `words`-gram of every corpus text
    char_hashes: np.ndarray  # sorted unique uint64: every `chars`-character window of every corpus text

    def __post_init__(self):
        _check_sizes(self.words, self.chars)
        for name in ("word_hashes", "char_hashes"):
            array = _sorted_unique(name, getattr(self, name))
            array.setflags(write=False)  # shared by every check; nothing may change it
            object.__setattr__(self, name, array)

    @classmethod
    def build(cls, texts: Iterable[str], words: int = 7, chars: int = 40) -> "CopyIndex":
        """Hash every window of every text. Texts shorter than a window add nothing for that rule."""
        _check_sizes(words, chars)
        texts = [normalize(text) for text in texts]
        return cls(words, chars, cls._corpus_word_hashes(texts, words), cls._corpus_char_hashes(texts, chars))

    @staticmethod
    def _corpus_char_hashes(texts: list[str], width: int) -> np.ndarray:
        # One concatenation hashed in one go; windows that straddle two texts are masked out.
        values = _mix(_code_points("".join(texts)))
        text_ids = np.repeat(np.arange(len(texts)), np.array([len(text) for text in texts], dtype=np.int64))
        hashes = _window_hashes(values, width)[_within_one_text(text_ids, width)]
        return np.unique(hashes)

    @staticmethod
    def _corpus_word_hashes(texts: list[str], width: int) -> np.ndarray:
        vocabulary: dict[str, int] = {}  # each distinct word is hashed once
        token_ids, lengths = [], []
        for text in texts:
            tokens = words_of(text)
            token_ids.extend(vocabulary.setdefault(word, len(vocabulary)) for word in tokens)
            lengths.append(len(tokens))
        table = np.array([_word_hash(word) for word in vocabulary], dtype=np.uint64)
        values = table[np.array(token_ids, dtype=np.int64)]
        text_ids = np.repeat(np.arange(len(texts)), np.array(lengths, dtype=np.int64))
        hashes = _window_hashes(values, width)[_within_one_text(text_ids, width)]
        return np.unique(hashes)

    def copied_span(self, text: str) -> str | None:
        """The first copied span of `text`: its `words` words joined by spaces (checked first), or
        its `chars` characters as written (after NFC). None if nothing is copied."""
        tokens = words_of(text)
        if len(tokens) >= self.words:
            values = np.array([_word_hash(word) for word in tokens], dtype=np.uint64)
            hit = _first_hit(self.word_hashes, _window_hashes(values, self.words))
            if hit is not None:
                return " ".join(tokens[hit : hit + self.words])
        text = normalize(text)
        if len(text) >= self.chars:
            hit = _first_hit(self.char_hashes, _window_hashes(_mix(_code_points(text)), self.chars))
            if hit is not None:
                return text[hit : hit + self.chars]
        return None

    def copies(self, text: str) -> bool:
        return self.copied_span(text) is not None

    @property
    def nbytes(self) -> int:
        return self.word_hashes.nbytes + self.char_hashes.nbytes

    def arrays(self) -> dict[str, np.ndarray]:
        """The hashes for an orbax StandardSave item, as int64 (same bits): signed 64-bit is the
        common ground of every array store. orbax refuses zero-size arrays, so an empty table is
        saved as one placeholder entry; settings() holds the true counts and from_arrays trims."""
        return {name: self._stored(getattr(self, name)) for name in ("word_hashes", "char_hashes")}

    @staticmethod
    def _stored(hashes: np.ndarray) -> np.ndarray:
        return hashes.view(np.int64) if len(hashes) else np.zeros(1, dtype=np.int64)

    def settings(self) -> dict:
        """JSON for the checkpoint's meta: what from_arrays needs besides the arrays."""
        return {
            "scheme": SCHEME,
            "words": self.words,
            "chars": self.chars,
            "word_count": len(self.word_hashes),
            "char_count": len(self.char_hashes),
        }

    @classmethod
    def from_arrays(cls, arrays: dict, settings: dict) -> "CopyIndex":
        """Inverse of arrays() + settings(). Restore the arrays as numpy int64 (orbax's default
        without a target), not as jax arrays: those are 32-bit unless jax_enable_x64 is set."""
        if settings.get("scheme") != SCHEME:
            raise ValueError(f"copy index uses hash scheme {settings.get('scheme')!r}; this code reads {SCHEME!r}")
        loaded = {}
        for name, count_key in (("word_hashes", "word_count"), ("char_hashes", "char_count")):
            array, count = np.asarray(arrays[name]), settings[count_key]
            if len(array) < count:
                raise ValueError(f"copy index {name} has {len(array)} entries, settings say {count}")
            loaded[name] = array[:count]
        return cls(settings["words"], settings["chars"], **loaded)
