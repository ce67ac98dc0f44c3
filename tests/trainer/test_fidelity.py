"""The classifier two-sample test and the generators it compares dann with."""

import random

import numpy as np

from lstm.copyindex import CopyIndex
from lstm.vocab import Vocab
from trainer.baselines import NGramModel
from trainer.batches import encode_records
from trainer.corpus import Record
from trainer.fidelity import (
    discriminator_auc,
    made_up_words,
    markov_posts,
    ngram_posts,
    report,
    without_copies,
)

SUBJECTS = ["the cat", "my sister", "the bus", "our neighbour", "this coffee", "the printer", "my phone"]
VERBS = ["is late again", "made my day", "will not stop beeping", "smells amazing", "broke this morning",
         "wants attention", "is on strike"]


def posts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)}, {rng.choice(['lol', 'ugh', 'honestly', 'again'])}"
            for _ in range(count)]


def test_the_auc_is_near_one_for_gibberish_and_near_a_half_for_more_of_the_same():
    real = posts(60, 0)
    rng = random.Random(1)
    gibberish = ["".join(rng.choice("qxzjkvw ") for _ in range(40)) for _ in range(60)]
    assert discriminator_auc(real, gibberish) > 0.95
    assert discriminator_auc(real, posts(60, 2)) < 0.7
    assert discriminator_auc(real[:5], posts(5, 2)) is None  # too few to say anything


def test_made_up_words_counts_words_the_person_never_used():
    known = {"the", "cat", "is", "late"}
    assert made_up_words(["the cat is late", "the elocolate cat"], known) == 0.1429  # 1 of 7 words
    assert made_up_words(["123 @@"], known) is None  # no words at all


def test_markovify_posts_are_repeatable_and_the_copy_filter_drops_copies():
    training = posts(200, 3)
    first, again = markov_posts(training, 20, seed=5), markov_posts(training, 20, seed=5)
    assert first == again and len(first) == 20
    state = random.getstate()
    markov_posts(training, 5, seed=6)
    assert random.getstate() == state  # the global random state is left as it was
    long_post = "and then the printer said it was out of paper even though I had just filled it"
    index = CopyIndex.build([*training, long_post], words=7, chars=40)
    kept = without_copies([*first, long_post], index)
    assert long_post not in kept and not any(index.copies(text) for text in kept)


def test_the_ngram_sampler_writes_from_the_corpus_alphabet():
    records = [Record("post", text) for text in posts(200, 4)]
    vocab = Vocab.build(r.text for r in records)
    model = NGramModel(encode_records(records, vocab), len(vocab), 5)
    sampled = ngram_posts(model, vocab, 5, seed=0, max_chars=80)
    assert len(sampled) == 5 and all(0 < len(text) <= 80 for text in sampled)
    assert set("".join(sampled)) <= set(vocab.chars)
    assert ngram_posts(model, vocab, 5, seed=0, max_chars=80) == sampled


def test_the_report_has_every_number_dann_eval_prints():
    training, real = posts(300, 7), posts(40, 8)
    records = [Record("post", text) for text in training]
    vocab = Vocab.build(training)
    ngram = NGramModel(encode_records(records, vocab), len(vocab), 4)
    result = report(real, posts(40, 9), training, CopyIndex.build(training), lambda: ngram, vocab, max_chars=80)
    for key in ("auc_dann", "auc_markov", "auc_markov_nocopy", "auc_ngram", "made_up_words"):
        assert key in result
    assert result["auc_dann"] < 0.75 and result["made_up_words"] == 0.0
    assert result["lengths"]["real"]["median"] == float(np.median([len(t) for t in real]))
