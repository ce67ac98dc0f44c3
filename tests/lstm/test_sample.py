"""The sampler, driven by fake models whose next-character distribution depends only on the
current character, so every expected output can be worked out by hand."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lstm.model import ModelConfig
from lstm.sample import encode_prompts, generate
from lstm.vocab import EOS, POST, REPLY, UNK, UNK_CHAR, Vocab

VOCAB = Vocab(chars=tuple("abcdefgh"))  # ids 4..11


class Table(nnx.Module):
    """Fake model: logits for the next character are row `token` of a (V, V) table."""

    def __init__(self, table):
        self.table = nnx.Param(jnp.asarray(table, jnp.float32))
        self.config = ModelConfig(vocab_size=len(table), hidden=1)

    def init_carry(self, batch):
        return jnp.zeros((batch,))

    def step_weights(self):
        return None

    def step(self, token, carry, weights=None):
        return self.table[...][token], carry


def successor_table(margin=10.0):
    """After each letter the next letter is near-certain; after 'h' comes <eos>."""
    v = len(VOCAB)
    table = np.zeros((v, v))
    for i in range(4, v - 1):
        table[i, i + 1] = margin
    table[v - 1, EOS] = margin
    table[POST, 4] = table[REPLY, 4] = margin
    return table


def random_table(seed=0):
    return np.random.default_rng(seed).normal(size=(len(VOCAB), len(VOCAB))) * 3


def texts(model, prompts, **kw):
    return [t for t, _ in generate(model, VOCAB, prompts, **kw)]


def test_stops_at_end_of_post():
    assert texts(Table(successor_table()), [""], temperature=0) == ["abcdefgh"]


def test_respects_the_maximum_length():
    assert texts(Table(successor_table()), ["", "b"], temperature=0, max_chars=3) == ["abc", "bcde"]


def test_prompts_of_different_lengths_share_one_batch():
    out = texts(Table(successor_table()), ["", "ef", "abcdefg", "c"], temperature=0.4)
    assert out == ["abcdefgh", "efgh", "abcdefgh", "cdefgh"]


def greedy_chain(table, length):
    token, chars = POST, []
    allowed = np.array([i not in (UNK, POST, REPLY) for i in range(len(table))])
    for _ in range(length):
        token = int(np.argmax(np.where(allowed, table[token], -np.inf)))
        if token == EOS:
            break
        chars.append(VOCAB.chars[token - 4])
    return "".join(chars)


def test_temperature_zero_is_argmax():
    table = random_table()
    assert texts(Table(table), [""], temperature=0, max_chars=40) == [greedy_chain(table, 40)]


def test_top_k_one_is_greedy():
    table = random_table(1)
    sampled = texts(Table(table), [""] * 4, temperature=1.0, top_k=1, max_chars=40, seed=7)
    assert sampled == [greedy_chain(table, 40)] * 4


def test_tiny_top_p_is_greedy():
    table = random_table(2)
    sampled = texts(Table(table), [""] * 4, temperature=1.0, top_p=1e-6, max_chars=40, seed=3)
    assert sampled == [greedy_chain(table, 40)] * 4


def test_a_fixed_seed_is_reproducible():
    model = Table(random_table(3))
    first = texts(model, [""] * 8, temperature=1.0, max_chars=30, seed=5)
    assert texts(model, [""] * 8, temperature=1.0, max_chars=30, seed=5) == first
    assert texts(model, [""] * 8, temperature=1.0, max_chars=30, seed=6) != first
    assert len(set(first)) > 1  # rows of one batch differ from each other


def test_reserved_symbols_are_never_generated():
    table = successor_table()
    table[:, UNK] = table[:, POST] = table[:, REPLY] = 100.0  # the fake model loves them
    out = texts(Table(table), [""] * 4, temperature=1.0, max_chars=20)
    assert all(UNK_CHAR not in t and len(t) > 0 for t in out)


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        generate(Table(successor_table()), VOCAB, [""], mode="tweet")


def test_each_row_keeps_its_own_settings_and_seed():
    table = random_table(4)
    model = Table(table)
    alone = texts(model, [""], temperature=1.0, max_chars=30, seed=11)[0]
    # Row 1 of a mixed batch has seed 10 + 1 = 11 and temperature 1.0, as `alone` had.
    mixed = texts(model, ["", "", ""], temperature=[0.0, 1.0, 0.7], max_chars=30, seed=10)
    assert len(mixed) == 3  # sampled as 4 rows (a power of two); the padding row is dropped
    assert mixed[0] == greedy_chain(table, 30)
    assert mixed[1] == alone


@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, 0, 1.0), (0.4, 0, 1.0), (1.0, 3, 1.0), (0.7, 0, 0.8)])
def test_pick_draws_from_softmax_of_logits_over_temperature_after_the_filters(temperature, top_k, top_p):
    import jax

    from lstm.sample import pick

    rows = 40_000
    logits = np.array([2.0, 1.0, 0.5, -np.inf, 0.0, -1.0], np.float32)  # index 3 is banned
    scaled = logits / temperature
    order = np.argsort(-scaled)
    keep = np.ones(len(logits), bool)
    if top_k:
        keep[order[top_k:]] = False
    if top_p < 1.0:
        probs = np.exp(scaled[order] - scaled.max())
        probs /= probs.sum()
        before = np.cumsum(probs) - probs
        keep[order[before >= top_p]] = False
    expected = np.where(keep, np.exp(scaled - scaled.max()), 0.0)
    expected /= expected.sum()

    uniform = jax.random.uniform(jax.random.key(0), (rows,))
    setting = lambda value, dtype: jnp.full((rows,), value, dtype)
    tokens = pick(jnp.broadcast_to(jnp.asarray(logits), (rows, len(logits))), uniform,
                  setting(temperature, jnp.float32), setting(top_k, jnp.int32), setting(top_p, jnp.float32),
                  filtered=bool(top_k or top_p < 1.0))
    seen = np.bincount(np.asarray(tokens), minlength=len(logits)) / rows
    assert seen[3] == 0.0
    np.testing.assert_allclose(seen, expected, atol=0.01)


def test_a_conversation_is_fed_as_the_posts_before_oldest_first():
    vocab = Vocab.build(["abc"])
    ids, lens = encode_prompts(vocab, ["reply", "reply", "post"], ["", "c", ""], [("a", "b"), "a", None])
    a, b, c = (vocab.encode(ch)[0] for ch in "abc")
    assert ids[0, : lens[0]].tolist() == [EOS, POST, a, EOS, POST, b, EOS, REPLY]
    assert ids[1, : lens[1]].tolist() == [EOS, POST, a, EOS, REPLY, c]
    assert ids[2, : lens[2]].tolist() == [EOS, POST]


def test_the_running_sum_as_a_matmul_picks_what_cumsum_picks():
    """pick's CDF is a matmul with a triangular matrix (one kernel): on 20,000 random rows it
    chooses the token a cumsum would."""
    import jax

    from lstm.sample import pick

    keys = jax.random.split(jax.random.key(7), 2)
    logits = 3.0 * jax.random.normal(keys[0], (20_000, 97))
    uniform = jax.random.uniform(keys[1], (20_000,))
    temperature = jnp.full(20_000, 0.7)
    ours = pick(logits, uniform, temperature, jnp.zeros(20_000, jnp.int32), jnp.ones(20_000), filtered=False)
    weights = jnp.exp(logits / 0.7 - jnp.max(logits / 0.7, axis=-1, keepdims=True))
    cdf = jnp.cumsum(weights, axis=-1)
    theirs = jnp.minimum(jnp.sum(cdf <= uniform[:, None] * cdf[:, -1:], axis=-1), 96)
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))
