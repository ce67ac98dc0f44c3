"""The blocklist: generated text that spells a listed term is never served.

A character model recombines letters, so it can spell a slur that nobody wrote. Text is compared
with the list after folding away the usual disguises:
- case and accents ("Ñíce" is "nice");
- leetspeak: digits and symbols that stand for letters ("n1c3", "$", "@"), with both readings of
  1 (i and l); "!" or "|" between letters reads as i;
- letters spaced out or separated by punctuation ("n i c e", "n.i.c.e", "n-i-c-e");
- a letter held for three or more ("niiiice").
A term matches whole words only, with a plural s or es: "nice" blocks "nices" but not "niceties".

The default list is the `wordfilter` package's (Darius Kazemi's list of slurs for text generators,
which bot makers have used for a decade), without the swear words and everyday words it also
holds (`NOT_BY_DEFAULT`): people swear in their own posts, and "crazy" or "lame" are the person's
words, not slurs. DANN_BLOCKLIST_FILE adds the owner's own terms; DANN_BLOCKLIST=off drops the default.
"""

import functools
import json
import re
import unicodedata
from importlib import resources
from pathlib import Path

from lstm.errors import DannError

# In wordfilter's list, but swearing or ordinary words with a common innocent sense.
NOT_BY_DEFAULT = frozenset([
    "beeyotch", "biatch", "bitch", "cunt", "dick", "douchebag", "fatass", "fatso", "lardass", "pussie",
    "pussy", "tits", "titt", "twat", "skank", "slut", "whore", "crazie", "crazy", "dumb", "idiot", "insane",
    "insanitie", "insanity", "lame", "lunatic", "gash", "gimp", "hooker", "prostitute", "spade", "spook",
    "mick", "nip", "eskimo", "coolie", "crip", "gyp", "gypsy", "homo",
])
LEET = {"0": "o", "3": "e", "4": "a", "5": "s", "6": "g", "7": "t", "8": "b", "9": "g",
        "@": "a", "$": "s", "+": "t"}
BETWEEN_LETTERS_I = re.compile(r"(?<=[a-z])[!|](?=[a-z])")
HELD = re.compile(r"([a-z])\1{2,}")
PIECE = re.compile(r"[a-z0-9]+")
# Inside a longer word only terms this long are looked for: shorter ones hide in ordinary words
# ("night", "spice", "Japan", "raccoon") and are matched as whole words only.
GLUED_MIN_CHARS = 5


class BlocklistError(DannError):
    """The blocklist file cannot be used (missing, unreadable, not UTF-8)."""


def fold(text: str) -> str:
    """Lowercase, without accents (NFKD, then the combining marks dropped)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def readings(text: str) -> list[str]:
    """The text with leetspeak read as letters, once with 1 as i and once with 1 as l."""
    text = BETWEEN_LETTERS_I.sub("i", fold(text))
    text = "".join(LEET.get(ch, ch) for ch in text)
    return [text.replace("1", "i"), text.replace("1", "l")]


def words(reading: str, joined: int = 1) -> set[str]:
    """Every word a reader could see in `reading` (already folded): the pieces between punctuation,
    each whitespace chunk with its punctuation squeezed out, runs of single letters joined, and
    (for terms of several words) up to `joined` consecutive pieces run together."""
    found = set()
    pieces_in_order = []
    for chunk in reading.split():
        pieces = PIECE.findall(chunk)
        found.update(pieces)
        found.add("".join(pieces))
        pieces_in_order += pieces
    for width in range(2, joined + 1):
        found.update("".join(pieces_in_order[i:i + width]) for i in range(len(pieces_in_order) - width + 1))
    run = []
    for piece in [*pieces_in_order, ""]:  # "" ends the last run
        if len(piece) == 1:
            run.append(piece)
            continue
        if len(run) >= 2:
            found.add("".join(run))
        run = []
    for word in list(found):
        if HELD.search(word):
            found.add(HELD.sub(r"\1\1", word))
            found.add(HELD.sub(r"\1", word))
    found.discard("")
    return found


def term_key(term: str) -> str:
    """How a term is compared: folded, its spaces and punctuation squeezed out ("half-breed" is "halfbreed")."""
    return "".join(PIECE.findall(fold(term)))


class Blocklist:
    def __init__(self, terms):
        terms = [term for term in terms if term_key(term)]
        self.raw = tuple(terms)  # as given: a union rebuilds from these, spaces and all
        self.terms = frozenset(map(term_key, terms))
        self.glued_terms = frozenset(term for term in self.terms if len(term) >= GLUED_MIN_CHARS)
        # Terms of several words ("street shitter") are also looked for across the spaces between
        # words; single words are not, or "go ok" would spell a slur.
        self.longest = max((len(PIECE.findall(fold(term))) for term in terms), default=1)
        self.phrases = frozenset(term_key(term) for term in terms if len(PIECE.findall(fold(term))) > 1)

    @classmethod
    @functools.cache
    def default(cls) -> "Blocklist":
        listed = json.loads(resources.files("wordfilter").joinpath("badwords.json").read_text(encoding="utf-8"))
        return cls(term for term in listed if term_key(term) not in NOT_BY_DEFAULT)

    @classmethod
    def from_file(cls, path: Path) -> "Blocklist":
        """One term a line; blank lines and lines starting with # are skipped."""
        try:
            text = Path(path).read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise BlocklistError(f"blocklist file {path}: no such file (DANN_BLOCKLIST_FILE)") from None
        except UnicodeDecodeError as error:
            raise BlocklistError(f"blocklist file {path}: not UTF-8 text (byte {error.start}); save it as UTF-8") from None
        except OSError as error:
            raise BlocklistError(f"blocklist file {path}: {error.strerror or error}") from None
        return cls(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))

    def __or__(self, other: "Blocklist") -> "Blocklist":
        # From the raw terms: the keys have lost the spaces that mark a term of several words.
        return Blocklist((*self.raw, *other.raw))

    def __len__(self) -> int:
        return len(self.terms)

    def glued(self, text: str) -> str | None:
        """The first listed term in `text` as a whole word (`match`), or one of GLUED_MIN_CHARS or
        more letters anywhere, even inside a longer word ("dishwasherndd" holds "dishwasher"); or
        None. Stricter than `match`: for what a person typed (a prompt is served as dann's own
        words) and for last-resort fallbacks."""
        if not self.terms:
            return None
        if found := self.match(text):
            return found
        for reading in readings(text):
            squeezed = "".join(PIECE.findall(reading))
            held = HELD.sub(r"\1", squeezed)
            for term in self.glued_terms:
                if term in squeezed or term in held:
                    return term
        return None

    def match(self, text: str) -> str | None:
        """The first listed term `text` spells, or None."""
        if not self.terms:
            return None
        for reading in readings(text):
            single = words(reading)
            for word in single | (words(reading, self.longest) if self.phrases else set()):
                for form in (word, word.removesuffix("s"), word.removesuffix("es")):
                    if form in (self.terms if word in single else self.phrases):
                        return form
        return None
