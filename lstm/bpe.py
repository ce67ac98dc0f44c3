"""A subword vocabulary: byte-level BPE (Hugging Face `tokenizers`), trained on the export.

The option beside lstm/vocab.py's characters (TrainConfig.tokens = "bpe"): a post takes fewer
steps to write, and the model predicts whole common words at once. It has the same interface as
Vocab (encode, encode_record, decode, to_json), with the same four reserved ids, so the model, the
sampler, the copy filter and best-of-n work on either; docs/fidelity.md#subwords has what it
measured against characters.

Byte-level: every text encodes, with no <unk> (an emoji the merges never saw is its UTF-8 bytes),
and a continuation decodes on its own exactly as it would after its prompt, because spaces belong
to the token after them ("Ġmorning"). Text is NFC-normalised first, as for characters.

Loss per token and loss per character are different units. The trainer reports both kinds of model
in nats per character (`tokens_per_char` converts: a token stream's loss times tokens per
character of the same posts), so val losses, the gate and bits per character compare across
vocabularies.
"""

import dataclasses
import functools
import math
from collections.abc import Iterable

from lstm.vocab import EOS, KIND_IDS, SPECIALS, normalize

KIND = "bpe"


@functools.lru_cache(maxsize=8)
def _tokenizer(serialized: str):
    from tokenizers import Tokenizer

    return Tokenizer.from_str(serialized)


@dataclasses.dataclass(frozen=True)
class BpeVocab:
    tokenizer_json: str  # the trained tokenizer, as `tokenizers` serialises it
    chars_per_token: float  # on the posts it was trained on: how many steps a post of n characters takes

    chars = ()  # no per-character table: the lexicon (lstm/lexicon.py) applies to characters only

    @classmethod
    def build(cls, texts: Iterable[str], size: int = 1024) -> "BpeVocab":
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        texts = [normalize(t) for t in texts]
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=list(SPECIALS), show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tokenizer.train_from_iterator(texts, trainer=trainer)
        if [tokenizer.token_to_id(s) for s in SPECIALS] != list(range(len(SPECIALS))):
            raise ValueError("the BPE tokenizer did not give the reserved tokens ids 0 to 3")
        tokens = sum(len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False))
        chars = sum(len(t) for t in texts)
        return cls(tokenizer.to_str(), round(chars / max(tokens, 1), 4))

    @property
    def tokenizer(self):
        return _tokenizer(self.tokenizer_json)

    def __len__(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(normalize(text), add_special_tokens=False).ids

    def encode_record(self, kind: str, text: str) -> list[int]:
        return [KIND_IDS[kind], *self.encode(text), EOS]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`, stopping at the first <eos>; a byte sequence cut short shows as U+FFFD."""
        kept = []
        for i in ids:
            if int(i) == EOS:
                break
            kept.append(int(i))
        return self.tokenizer.decode(kept, skip_special_tokens=True)

    def steps_for(self, chars: int) -> int:
        """Sampler steps to allow for `chars` characters: a margin over the usual ratio."""
        return math.ceil(1.5 * chars / self.chars_per_token) + 4

    def to_json(self) -> dict:
        return {"kind": KIND, "tokenizer": self.tokenizer_json, "chars_per_token": self.chars_per_token,
                "specials": list(SPECIALS)}

    @classmethod
    def from_json(cls, data: dict) -> "BpeVocab":
        if tuple(data.get("specials", SPECIALS)) != SPECIALS:
            raise ValueError(f"checkpoint vocabulary has specials {data['specials']}, expected {list(SPECIALS)}")
        return cls(data["tokenizer"], float(data["chars_per_token"]))
