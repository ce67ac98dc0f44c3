"""The measured-only levers (the word-pair score), and the served n-gram mixture with the lexicon."""

import pytest

from lstm import checkpoint
from lstm.lexicon import Lexicon
from lstm.ngram import NGramTable
from lstm.sample import generate
from trainer.baselines import NGramModel, table_levels
from trainer.batches import encode_records
from trainer.corpus import Record
from trainer.levers import pair_score

POSTS = [Record("post", "good morning friends")] * 40 + [Record("reply", "lol same")] * 40


@pytest.mark.slow
def test_the_mixture_speaks_within_the_lexicon(trained_dir):
    ckpt = checkpoint.load_latest(trained_dir)
    stream = encode_records(POSTS, ckpt.vocab)
    table = NGramTable.build(table_levels(NGramModel(stream, len(ckpt.vocab), 4)), len(ckpt.vocab))
    lexicon = Lexicon.build([r.text for r in POSTS], ckpt.vocab)
    for weight in (0.0, 0.5, 1.0):  # the LSTM alone, half and half, the n-gram alone
        out = generate(ckpt.model, ckpt.vocab, ["", "", "good"], mode=["post", "reply", "post"], temperature=0.05,
                       seed=[1, 2, 3], max_chars=40, lexicon=lexicon, ngram=table.with_weight(weight))
        texts = [text for text, _ in out]
        assert texts == ["good morning friends", "lol same", "good morning friends"], (weight, texts)
        assert all(-1.0 < logp <= 0 for _, logp in out)  # the served mixture's mean log-probability


def test_the_pair_score_prefers_word_pairs_the_person_wrote():
    score = pair_score(2.0, ["good morning friends"])
    options = {"real_logp": -1.0, "max_chars": 40}
    assert score("good morning", -1.0, **options) - score("morning good", -1.0, **options) == 2.0
