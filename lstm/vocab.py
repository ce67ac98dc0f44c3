"""Character vocabulary: code points <-> ids, with reserved ids for the record structure.

A corpus is a stream of records. Each record is encoded as

    <post> t e x t <eos>      or      <reply> t e x t <eos>

so one model learns both kinds, and generation stops at <eos>. Text is NFC-normalised first, so
an accented letter is one code point whichever way the keyboard produced it; ids are per code
point, so an emoji or a CJK character is one id and bytes are never split.

Rare characters matter: a 155-character vocabulary of someone's posts gave gibberish, cutting it
to 96 made words appear. Characters seen fewer than `min_count` times either become <unk> or are
dropped from the text.
"""

import collections
import dataclasses
import unicodedata
from collections.abc import Iterable

EOS, UNK, POST, REPLY = 0, 1, 2, 3
SPECIALS = ("<eos>", "<unk>", "<post>", "<reply>")
KIND_IDS = {"post": POST, "reply": REPLY}
UNK_CHAR = "\ufffd"  # how <unk> is shown when decoded


def normalize(text: str) -> str:
    return unicodedata.normalize("NFC", text)


@dataclasses.dataclass(frozen=True)
class Vocab:
    chars: tuple[str, ...]  # id = len(SPECIALS) + position
    rare: str = "unk"  # what encode() does with unknown characters: "unk" or "drop"

    def __post_init__(self):
        if self.rare not in ("unk", "drop"):
            raise ValueError(f"rare must be 'unk' or 'drop', not {self.rare!r}")
        object.__setattr__(self, "_ids", {c: i + len(SPECIALS) for i, c in enumerate(self.chars)})

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1, rare: str = "unk") -> "Vocab":
        counts = collections.Counter()
        for text in texts:
            counts.update(normalize(text))
        kept = sorted(c for c, n in counts.items() if n >= min_count)
        return cls(chars=tuple(kept), rare=rare)

    def __len__(self) -> int:
        return len(SPECIALS) + len(self.chars)

    def encode(self, text: str) -> list[int]:
        ids = self._ids
        if self.rare == "drop":
            return [ids[c] for c in normalize(text) if c in ids]
        return [ids.get(c, UNK) for c in normalize(text)]

    def encode_record(self, kind: str, text: str) -> list[int]:
        return [KIND_IDS[kind], *self.encode(text), EOS]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`, stopping at the first <eos>; <unk> shows as U+FFFD, kind marks vanish."""
        out = []
        offset = len(SPECIALS)
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i >= offset:
                out.append(self.chars[i - offset])
            elif i == UNK:
                out.append(UNK_CHAR)
        return "".join(out)

    def steps_for(self, chars: int) -> int:
        """Sampler steps to allow for `chars` characters: one each."""
        return chars

    def to_json(self) -> dict:
        return {"chars": "".join(self.chars), "rare": self.rare, "specials": list(SPECIALS)}

    @classmethod
    def from_json(cls, data: dict) -> "Vocab":
        if tuple(data.get("specials", SPECIALS)) != SPECIALS:
            raise ValueError(f"checkpoint vocabulary has specials {data['specials']}, expected {list(SPECIALS)}")
        # Stored as one string of code points: NFC text never splits back differently.
        return cls(chars=tuple(data["chars"]), rare=data["rare"])
