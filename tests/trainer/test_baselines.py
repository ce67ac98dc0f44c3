import math
from collections import Counter

import numpy as np
import pytest

from trainer.baselines import (
    NGramModel,
    _discounts,
    baselines,
    max_order,
    ngram_val_loss,
    unigram_val_loss,
)

ALPHABET = " abcdefghijklmnopqrstuvwxyz.,'"
VOCAB = 4 + len(ALPHABET) + 2  # the specials, the letters, and two ids that never occur in train
NEVER = VOCAB - 1

TEXT = (
    "the cat sat on the mat. the dog sat on the log. a cat and a dog sat on a mat, "
    "and the cat saw the dog. the dog saw the cat on the mat and the log. "
    "then the cat ran and the dog ran after the cat, but the cat sat on the mat again. "
)


def encode(text: str) -> np.ndarray:
    return np.array([4 + ALPHABET.index(c) for c in text], np.int32)


TRAIN = encode(TEXT * 3)


def reference_prob(train, vocab_size: int, order: int, context, word: int) -> float:
    """Interpolated modified Kneser-Ney from the definition, with dicts, one word at a time."""
    train, context = [int(t) for t in train], [int(t) for t in context]

    def grams(n):
        return [tuple(train[i : i + n]) for i in range(len(train) - n + 1)]

    def table(j):  # (context, word) -> count for context length j
        if j == order - 1:
            return Counter(grams(j + 1))
        return Counter(g[1:] for g in set(grams(j + 2)))  # how many different tokens precede the gram

    p = 1.0 / vocab_size
    for j in range(min(order - 1, len(context)) + 1):
        counts = table(j)
        discounts = _discounts(np.array(list(counts.values())))
        h = tuple(context[len(context) - j :])
        after = {g[-1]: n for g, n in counts.items() if g[:-1] == h}
        if after:
            n = after.get(word, 0)
            backoff = sum(discounts[min(c, 3)] for c in after.values())
            p = (n - discounts[min(n, 3)] + backoff * p) / sum(after.values())
    return p


CONTEXTS = {
    "empty": [],
    "seen": encode("the ca"),
    "unseen": encode("zzq x"),
    "never-seen token": [*encode("the c"), NEVER],
    "never-seen token early": [NEVER, *encode("the")],
    "special": [2, *encode("the")],
}


@pytest.mark.parametrize("order", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("name", CONTEXTS)
def test_probabilities_sum_to_one(order, name):
    p = NGramModel(TRAIN, VOCAB, order).prob(CONTEXTS[name])
    assert p.shape == (VOCAB,)
    assert abs(p.sum() - 1.0) < 1e-9
    assert (p > 0).all()  # even for tokens never seen in train


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_matches_the_definition(order):
    model = NGramModel(TRAIN, VOCAB, order)
    for context in CONTEXTS.values():
        expected = [reference_prob(TRAIN, VOCAB, order, context, w) for w in range(VOCAB)]
        np.testing.assert_allclose(model.prob(context), expected, rtol=1e-12)


def test_lower_orders_count_contexts_not_occurrences():
    # Kneser-Ney's point: x is common but only ever after y; z is rarer but follows many tokens.
    # After a context never seen, z is the better guess.
    train = [4, 5] * 30 + [7, 6, 8, 6, 9, 6, 10, 6, 11, 6, 12, 6]
    p = NGramModel(train, 14, 2).prob([13])
    assert p[6] > 2 * p[5]


def test_discount_estimate():
    counts = np.array([1, 1, 1, 1, 2, 2, 3, 4, 9])  # n1=4, n2=2, n3=1, n4=1, so Y = 1/2
    np.testing.assert_allclose(_discounts(counts), [0, 0.5, 1.25, 1.0])
    np.testing.assert_allclose(_discounts(np.array([50, 60])), [0, 0.5, 1.0, 1.5])  # too few to estimate


@pytest.mark.parametrize("order", [1, 2, 4, 6])
def test_vectorized_loss_matches_one_token_at_a_time(order):
    val = np.array([*encode("the cat sat on a log, zany quip."), NEVER, *encode("the dog"), 0, 3, 1, 2, *encode("a")])
    model = NGramModel(TRAIN, VOCAB, order)
    one_at_a_time = [math.log(model.prob(val[:t])[val[t]]) for t in range(1, len(val))]
    np.testing.assert_allclose(model.log_probs(val), one_at_a_time, rtol=1e-12)
    assert model.val_loss(val) == pytest.approx(-np.mean(one_at_a_time), rel=1e-12)


def test_unigram_by_hand():
    # counts + 1 = [3, 2, 1] over 3 + 3: p = 1/2, 1/3, 1/6. The first val token is only context.
    loss = unigram_val_loss([0, 0, 1], [2, 0, 1, 2], 3)
    assert loss == pytest.approx(-(math.log(1 / 2) + math.log(1 / 3) + math.log(1 / 6)) / 3)


def test_ngram_finds_structure_the_unigram_cannot():
    train, val = encode("abcd" * 300), encode("abcd" * 30)
    unigram = unigram_val_loss(train, val, VOCAB)
    assert unigram > 1.3  # about ln 4
    assert ngram_val_loss(train, val, VOCAB, 3) < 0.05
    assert ngram_val_loss(encode(TEXT * 5), encode(TEXT), VOCAB, 5) < 0.5 * unigram_val_loss(
        encode(TEXT * 5), encode(TEXT), VOCAB
    )


def test_unseen_tokens_in_val_cost_but_are_finite():
    train = encode("abcd" * 300)
    clean, odd = encode("abcd" * 30), encode("abcdabqdabcz" * 10)
    for order in (1, 2, 3, 8):
        loss = ngram_val_loss(train, odd, VOCAB, order)
        assert math.isfinite(loss)
        assert loss > ngram_val_loss(train, clean, VOCAB, order)
    assert math.isfinite(unigram_val_loss(train, odd, VOCAB))


def test_order_one_is_a_smoothed_unigram():
    train, val = encode(TEXT * 3), encode("the cat and the dog sat on the log. zz")
    assert ngram_val_loss(train, val, VOCAB, 1) == pytest.approx(unigram_val_loss(train, val, VOCAB), abs=0.05)


def test_baselines_pick_the_best_order():
    train, val = encode(TEXT * 4), encode("the dog sat on the mat and the cat ran after the dog. ")
    orders = range(1, 9)
    losses = [ngram_val_loss(train, val, VOCAB, n) for n in orders]
    result = baselines(train, val, VOCAB, orders)
    assert result == {
        "unigram_val_loss": round(unigram_val_loss(train, val, VOCAB), 4),
        "ngram_val_loss": round(min(losses), 4),
        "ngram_order": orders[int(np.argmin(losses))],
    }
    assert result["ngram_order"] not in (1, 8)  # the best is inside the range, so "first" or "last" would fail
    assert set(baselines(train, val, VOCAB)) == {"unigram_val_loss", "ngram_val_loss", "ngram_order"}


def test_orders_too_long_for_an_int64_key():
    assert max_order(120) == 9 and max_order(256) == 7
    with pytest.raises(ValueError, match="order"):
        NGramModel(np.arange(256), 256, 8)
    assert baselines(np.arange(256).repeat(2), np.arange(256), 256)["ngram_order"] <= 7  # skipped, not an error
