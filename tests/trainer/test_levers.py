"""The measured-only levers: the n-gram mixing sampler and the word-pair score."""

from lstm import checkpoint
from lstm.lexicon import Lexicon
from trainer.baselines import NGramModel
from trainer.batches import encode_records
from trainer.corpus import Record
from trainer.levers import NGramMix, pair_score

POSTS = [Record("post", "good morning friends")] * 40 + [Record("reply", "lol same")] * 40


def test_the_mixing_sampler_speaks_within_the_lexicon(trained_dir):
    ckpt = checkpoint.load_latest(trained_dir)
    stream = encode_records(POSTS, ckpt.vocab)
    ngram = NGramModel(stream, len(ckpt.vocab), 4)
    lexicon = Lexicon.build([r.text for r in POSTS], ckpt.vocab)
    for weight in (0.0, 0.5, 1.0):  # the LSTM alone, half and half, the n-gram alone
        out = NGramMix(ngram, weight)(ckpt.model, ckpt.vocab, ["", "", "good"], mode=["post", "reply", "post"],
                                      context=None, temperature=0.05, seed=[1, 2, 3], max_chars=40, lexicon=lexicon)
        texts = [text for text, _ in out]
        assert texts == ["good morning friends", "lol same", "good morning friends"], (weight, texts)
        assert all(-1.0 < logp <= 0 for _, logp in out)  # the LSTM's own mean log-probability


def test_the_pair_score_prefers_word_pairs_the_person_wrote():
    score = pair_score(2.0, ["good morning friends"])
    options = {"real_logp": -1.0, "max_chars": 40}
    assert score("good morning", -1.0, **options) - score("morning good", -1.0, **options) == 2.0
