"""The data of one run, prepared once: split, vocabulary, encoded streams, baselines, copy index.

Training, the promotion gate, the publish-time evaluation and `dann tune` all read this one value,
so nothing is split, encoded or counted twice. The baselines and the copy index cost seconds on a
large export and only some callers need them, so each is computed the first time it is asked for.
"""

import dataclasses
import functools

import numpy as np

from lstm.bpe import BpeVocab
from lstm.copyindex import CopyIndex
from lstm.errors import DannError
from lstm.lexicon import Lexicon
from lstm.ngram import NGramTable
from lstm.postindex import Post, PostIndex
from lstm.schema import Baselines, TrainConfig
from lstm.vocab import Vocab
from trainer.baselines import baselines
from trainer.batches import encode_records, split_records, tokens_per_char
from trainer.corpus import Corpus, Record
from trainer.mixture import build_table


class TrainingError(DannError):
    """Training cannot go on (too little data, NaN, divergence). The last good checkpoint is kept."""


@dataclasses.dataclass(eq=False)
class PreparedData:
    corpus: Corpus
    config: TrainConfig
    train_records: list[Record]
    val_records: list[Record]
    vocab: Vocab
    train: np.ndarray  # (N,) int32: <kind> text <eos> <kind> text <eos> ...
    val: np.ndarray
    blocklist: object = None  # dann/voice/blocklist.py's Blocklist: what the published posts leave out

    @functools.cached_property
    def val_scale(self) -> float:
        """Tokens per character of the validation posts: val losses times this are nats per
        character, whichever the vocabulary (lstm/bpe.py)."""
        return tokens_per_char(self.val_records, self.vocab)

    @functools.cached_property
    def baselines(self) -> Baselines:
        """In nats per character, like the model's val loss: counted on the same token stream."""
        found = baselines(self.train, self.val, len(self.vocab))
        for name in ("unigram_val_loss", "ngram_val_loss"):
            found[name] = round(found[name] * self.val_scale, 4)
        return Baselines(**found)

    @functools.cached_property
    def ngram(self) -> NGramTable | None:
        """The n-gram the served model mixes in (trainer/mixture.py), its weight not yet fitted;
        None when the config turns the mixture off."""
        if not self.config.ngram_mix:
            return None
        return build_table(self.train, len(self.vocab), self.baselines.ngram_order)

    @functools.cached_property
    def ngram_val_log_probs(self) -> np.ndarray | None:
        """ln p of each validation token from the second on under `ngram`, as the sampler sees it."""
        return None if self.ngram is None else self.ngram.log_probs(self.val)

    @functools.cached_property
    def copy_index(self) -> CopyIndex:
        """Every post of the export, validation included: a copy of any of them is a copy."""
        return CopyIndex.build((r.text for r in self.corpus.records), words=self.config.copy_words,
                               chars=self.config.copy_chars)

    @functools.cached_property
    def post_index(self) -> PostIndex:
        """The posts anyone may be shown (lstm/postindex.py), published with every version: never a
        private message, even when DMs were trained on, nor a post with a blocked term. Forgotten
        posts are already out of the corpus."""
        val = {id(r) for r in self.val_records}
        return PostIndex.build(Post(r.source_id, r.text, id(r) in val) for r in self.corpus.records
                               if not r.private and not (self.blocklist is not None and self.blocklist.match(r.text)))

    @functools.cached_property
    def lexicon(self) -> Lexicon | None:
        """The words of the training posts: the model learned from them and from nothing else, and
        `dann eval` must not hand it the validation posts' words. None for subwords, which spell
        several letters a step."""
        if isinstance(self.vocab, BpeVocab):
            return None
        return Lexicon.build((r.text for r in self.train_records), self.vocab)

    @functools.cached_property
    def length_quantiles(self) -> dict:
        """Every 5th percentile of the training posts' and replies' lengths (RunRecord.lengths)."""
        found = {}
        for kind in ("post", "reply"):
            lengths = [len(r.text) for r in self.train_records if r.kind == kind]
            if lengths:
                found[kind] = [round(float(q), 1) for q in np.percentile(lengths, np.arange(0, 101, 5))]
        return found

    @functools.cached_property
    def stats(self) -> dict:
        return self.corpus.stats()

    @functools.cached_property
    def data_hash(self) -> str:
        return self.corpus.data_hash()


def prepare(corpus: Corpus, config: TrainConfig, vocab: Vocab | None = None, blocklist=None) -> PreparedData:
    """Split `corpus` (the last `val_fraction` of it is validation) and encode both parts. The
    vocabulary is built from the training posts unless one is given (a trained model's, to score it).
    `blocklist` keeps posts with a blocked term out of the published posts (`post_index`)."""
    train_records, val_records = split_records(corpus.records, config.val_fraction)
    if vocab is None and config.tokens == "bpe":
        vocab = BpeVocab.build((r.text for r in train_records), config.bpe_vocab)
    elif vocab is None:
        vocab = Vocab.build((r.text for r in train_records), config.min_char_count, config.rare_chars)
    train = encode_records(train_records, vocab)
    val = encode_records(val_records, vocab)
    if not train_records or len(train) < config.seq_len + 2:
        raise TrainingError(
            f"the corpus is too small to train on: {len(corpus.records)} posts, {len(train)} training "
            f"symbols; sequences of {config.seq_len} need at least {config.seq_len + 2} and 2 posts"
        )
    return PreparedData(corpus, config, train_records, val_records, vocab, train, val, blocklist)
