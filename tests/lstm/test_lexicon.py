"""The lexicon: a trie of the person's words, and a sampler that spells nothing else."""

import numpy as np
import pytest

from lstm.lexicon import Lexicon, words_of
from lstm.sample import generate
from lstm.vocab import Vocab
from tests.lstm.test_sample import Table

VOCAB = Vocab(chars=tuple(" '.abcdefghA"))
WORDS = ["bad", "bed", "cab", "dead", "fade", "head", "each", "beach", "he", "he'd", "a"]


def uniform(vocab_size):
    """Fake model: every character equally likely at every step, so without a lexicon it spells
    whatever the dice say."""
    return Table(np.zeros((vocab_size, vocab_size)))


def test_accepts_whole_known_words_only():
    lexicon = Lexicon.of_words(WORDS, VOCAB)
    assert lexicon.accepts("Bad head. a beach")  # case does not matter
    assert lexicon.accepts("he'd")
    assert lexicon.accepts("'bad'")  # quotes around a word
    assert lexicon.accepts("bed'")  # "bed" has no "bed'…", so the apostrophe closes it
    assert lexicon.accepts("he' ")  # on the way to "he'd", "he" is still whole
    assert not lexicon.accepts("bea")  # a prefix is not a word
    assert not lexicon.accepts("bea ")
    assert not lexicon.accepts("dab")
    assert not lexicon.accepts("he'a")


def test_words_are_counted_and_kept_most_frequent_first():
    lexicon = Lexicon.build(["a bad bed", "bad head'd", "Bad"], VOCAB)
    assert lexicon.words[:2] == ("bad", "a")  # 3 times, then ties by spelling
    assert set(lexicon.words) == {"a", "bad", "bed", "head'd"}
    assert words_of("Don\u2019t 2nd x_y") == ["don't", "nd", "x", "y"]


def test_words_with_letters_outside_the_vocabulary_are_left_out():
    assert Lexicon.of_words(["bad", "zebra"], VOCAB).words == ("bad",)


def test_a_full_trie_keeps_the_most_frequent_words():
    lexicon = Lexicon.of_words(["bad", "cafe", "head"], VOCAB, max_nodes=10)
    assert lexicon.words == ("bad", "cafe")
    assert lexicon.accepts("cafe") and not lexicon.accepts("head")


def sample(lexicon, prompt="", seeds=64):
    model = uniform(len(VOCAB))
    out = generate(model, VOCAB, [prompt] * seeds, seed=0, temperature=1.0, max_chars=40, lexicon=lexicon)
    return [text for text, _ in out]


@pytest.mark.slow
def test_the_sampler_spells_only_known_words():
    lexicon = Lexicon.of_words(WORDS, VOCAB)
    free = sample(None)
    assert sum(not lexicon.accepts(t) for t in free) > 50  # the dice alone make up words
    kept = sample(lexicon)
    # A text cut at the length cap may end inside a word: every word before the last one is whole.
    for text in kept:
        complete = text if len(text) < 40 else text[: max(text.rfind(" "), 0)]
        assert lexicon.accepts(complete), text
    assert {w for t in kept for w in words_of(t)} <= set(WORDS) | {w[:n] for w in WORDS for n in range(len(w))}
    assert len({w for t in kept for w in words_of(t)} & set(WORDS)) >= 8  # and it still varies


def test_a_prompt_is_read_as_written_and_the_next_words_are_known():
    lexicon = Lexicon.of_words(WORDS, VOCAB)
    for text in sample(lexicon, prompt="ga", seeds=16):
        assert text.startswith("ga")
        rest = text[2:]
        first_boundary = min((rest.find(c) for c in " ." if c in rest), default=len(rest))  # ' is inside the word
        tail = rest[first_boundary:]
        complete = tail if len(text) < 42 else tail[: max(tail.rfind(" "), 0)]
        assert lexicon.accepts(complete), text


@pytest.mark.slow
def test_the_model_log_probability_is_not_the_lexicon_s():
    """Best-of-n judges candidates by the model's own probabilities: a uniform model gives every
    character log(1/V), with or without the lexicon narrowing the choice."""
    model = uniform(len(VOCAB))
    (_, free), = generate(model, VOCAB, [""], seed=3, temperature=1.0, max_chars=20)
    (_, kept), = generate(model, VOCAB, [""], seed=3, temperature=1.0, max_chars=20,
                          lexicon=Lexicon.of_words(WORDS, VOCAB))
    # <unk>, <post> and <reply> are banned for every row, so the choice is among V - 3.
    assert np.isclose(kept, np.log(1 / (len(VOCAB) - 3)), atol=1e-5)
    assert np.isclose(free, kept, atol=1e-5)


def test_the_table_never_outgrows_its_byte_cap(monkeypatch):
    import lstm.lexicon

    letters = 9  # a to h, and the apostrophe
    monkeypatch.setattr(lstm.lexicon, "MAX_TABLE_BYTES", 4 * letters * 10)  # room for 10 nodes
    lexicon = Lexicon.of_words(["bad", "cafe", "head"], VOCAB)
    assert lexicon.words == ("bad", "cafe") and lexicon.next.shape == (10, letters)
