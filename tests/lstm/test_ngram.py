"""The n-gram the served model mixes in: the hashed table against the counting model it stores,
the mixture the sampler draws from, and the table's round trip through a checkpoint."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lstm import checkpoint
from lstm.model import CharRNN, ModelConfig
from lstm.ngram import NGramTable, probs
from lstm.sample import generate, mixed_logits
from lstm.vocab import Vocab
from trainer.baselines import NGramModel, table_levels
from trainer.mixture import fit_weight

VOCAB = Vocab(chars=tuple("abcdefgh "))


def stream(text: str, repeats: int = 30) -> np.ndarray:
    return np.asarray([i for _ in range(repeats) for i in VOCAB.encode_record("post", text)], np.int32)


@pytest.fixture(scope="module")
def counted():
    train = stream("bad cafe fade hag", 20)
    rng = np.random.default_rng(0)
    train = np.concatenate([train, rng.integers(4, len(VOCAB), 400).astype(np.int32)])
    model = NGramModel(train, len(VOCAB), 5)
    return model, NGramTable.build(table_levels(model), len(VOCAB))


@pytest.mark.slow
def test_the_table_gives_the_counting_models_distribution_for_seen_and_unseen_contexts(counted):
    model, table = counted
    rng = np.random.default_rng(1)
    contexts = np.concatenate([stream("bad cafe")[:40].reshape(10, 4),  # seen
                               rng.integers(0, len(VOCAB), (30, 4))])  # mostly never seen
    found = np.asarray(probs(table.on_device, jnp.asarray(contexts, jnp.int32), jnp.full(len(contexts), 4)))
    assert found.shape == (40, len(VOCAB))
    np.testing.assert_allclose(found, model.prob_rows(contexts), atol=2e-6)
    np.testing.assert_allclose(found.sum(axis=1), 1.0, atol=1e-6)
    # Fewer real tokens than the order allows: only the newest count.
    short = np.asarray(probs(table.on_device, jnp.asarray(contexts[:5], jnp.int32), jnp.full(5, 2)))
    np.testing.assert_allclose(short, model.prob_rows(contexts[:5, 2:]), atol=2e-6)


def test_the_stream_scores_match_the_counting_model(counted):
    model, table = counted
    val = stream("cafe bag had bead", 3)
    np.testing.assert_allclose(table.log_probs(val, chunk=16), model.log_probs(val), atol=1e-5)


def test_pruning_leaves_a_proper_distribution(counted):
    model, _ = counted
    pruned = NGramTable.build(table_levels(model, min_total=50), len(VOCAB))
    assert len(pruned.fingerprints) < len(NGramTable.build(table_levels(model), len(VOCAB)).fingerprints)
    history = jnp.asarray(stream("bad cafe")[:40].reshape(10, 4), jnp.int32)
    found = np.asarray(probs(pruned.on_device, history, jnp.full(10, 4)))
    np.testing.assert_allclose(found.sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("weight", [0.3, 1.0])
def test_the_mixtures_log_probabilities_sum_to_one(counted, weight):
    _, table = counted
    logits = jax.random.normal(jax.random.key(0), (6, len(VOCAB))) * 3
    history = jnp.asarray(stream("bad cafe")[:24].reshape(6, 4), jnp.int32)
    mixed = mixed_logits(logits, table.with_weight(weight).on_device, history, jnp.full(6, 4))
    np.testing.assert_allclose(np.asarray(jax.nn.logsumexp(mixed, axis=-1)), 0.0, atol=1e-5)


def test_at_weight_zero_the_mixture_is_the_models_logits(counted):
    _, table = counted
    logits = jax.random.normal(jax.random.key(0), (6, len(VOCAB)))
    history = jnp.zeros((6, 4), jnp.int32)
    mixed = mixed_logits(logits, table.with_weight(0.0).on_device, history, jnp.full(6, 4))
    assert np.array_equal(np.asarray(mixed), np.asarray(logits))


@pytest.fixture(scope="module")
def untrained():
    return CharRNN(ModelConfig(vocab_size=len(VOCAB), hidden=16), rngs=nnx.Rngs(0))


@pytest.mark.slow
def test_the_sampler_at_weight_zero_gives_exactly_the_plain_sampler(counted, untrained):
    _, table = counted
    prompts = ["", "ba", "cafe f"]
    options = {"temperature": [0.4, 0.7, 1.0], "seed": 3, "max_chars": 40}
    assert generate(untrained, VOCAB, prompts, ngram=table.with_weight(0.0), **options) == \
        generate(untrained, VOCAB, prompts, **options)


@pytest.mark.slow
def test_the_sampler_at_weight_one_speaks_the_counts(untrained):
    # Only one text was ever counted: at weight 1 and a low temperature, an untrained LSTM says it.
    model = NGramModel(stream("bad cafe fade", 30), len(VOCAB), 6)
    table = NGramTable.build(table_levels(model), len(VOCAB), weight=1.0)
    texts = generate(untrained, VOCAB, ["", "", ""], temperature=0.05, seed=0, max_chars=30, ngram=table)
    assert [text for text, _ in texts] == ["bad cafe fade"] * 3
    plain = generate(untrained, VOCAB, ["", "", ""], temperature=0.05, seed=0, max_chars=30)
    assert all(text != "bad cafe fade" for text, _ in plain)


def test_the_table_round_trips_through_a_checkpoint(counted, untrained, tmp_path):
    _, table = counted
    checkpoint.save(tmp_path, 1, untrained, VOCAB, {"note": "x"}, ngram=table.with_weight(0.25))
    found = checkpoint.load_latest(tmp_path).ngram
    assert found.settings() == table.with_weight(0.25).settings()
    for name, array in table.arrays().items():
        assert np.array_equal(found.arrays()[name], array), name


def test_the_weight_is_the_one_that_minimises_the_mixtures_loss():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.05, 1, 2000), rng.uniform(0.05, 1, 2000)
    weight, loss = fit_weight(np.log(a), np.log(b))
    grid = np.linspace(0, 1, 1001)
    losses = [-np.mean(np.log((1 - w) * a + w * b)) for w in grid]
    assert weight == pytest.approx(grid[int(np.argmin(losses))], abs=2e-3)
    assert loss == pytest.approx(min(losses), abs=1e-6)
    assert fit_weight(np.log(a), np.log(a / 2))[0] == 0.0  # an n-gram that is always worse gets no weight
    assert fit_weight(np.log(a / 2), np.log(a))[0] == 1.0
