import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lstm.model import CharRNN, ModelConfig


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("residual", [False, True])
def test_output_shapes(cell, residual):
    config = ModelConfig(vocab_size=11, hidden=16, layers=3, cell=cell, residual=residual)
    model = CharRNN(config, rngs=nnx.Rngs(0))
    logits, carry = model(jnp.zeros((4, 7), jnp.int32), model.init_carry(4))
    assert logits.shape == (4, 7, 11)
    assert len(carry) == 3
    for leaf in jax.tree.leaves(carry):
        assert leaf.shape == (4, 16)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_step_matches_the_sequence_call(cell):
    """Sampling uses step(); training uses __call__(). They must compute the same thing."""
    model = CharRNN(ModelConfig(vocab_size=9, hidden=8, layers=2, cell=cell, residual=True), rngs=nnx.Rngs(1))
    tokens = jax.random.randint(jax.random.key(0), (3, 6), 0, 9)
    logits, _ = model(tokens, model.init_carry(3))
    carry = model.init_carry(3)
    for t in range(6):
        step_logits, carry = model.step(tokens[:, t], carry)
        np.testing.assert_allclose(step_logits, logits[:, t], atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_weight_drop_acts_in_training_only_and_trains_the_full_matrix(cell):
    config = ModelConfig(vocab_size=9, hidden=8, layers=2, cell=cell, weight_drop=0.5)
    model = CharRNN(config, rngs=nnx.Rngs(1))
    plain = nnx.merge(*nnx.split(CharRNN(ModelConfig(vocab_size=9, hidden=8, layers=2, cell=cell), rngs=nnx.Rngs(1))))
    tokens = jax.random.randint(jax.random.key(0), (3, 6), 0, 9)
    served, _ = model(tokens, model.init_carry(3))
    np.testing.assert_allclose(served, plain(tokens, plain.init_carry(3))[0], atol=1e-6)  # no key: untouched
    trained, _ = model(tokens, model.init_carry(3), dropout_key=jax.random.key(2))
    assert not np.allclose(trained, served)

    def loss(params, key):
        return nnx.merge(graphdef, params)(tokens, model.init_carry(3), dropout_key=key)[0].sum()

    graphdef, params = nnx.split(model)
    # Each mask zeroes about half of W_hh's gradient; two masks together reach (almost) all of it.
    grads = [jax.grad(loss)(params, jax.random.key(k)).layers[0].w_hh[...] for k in (3, 4)]
    assert 0.3 < np.mean(grads[0] == 0) < 0.7
    assert np.mean((grads[0] == 0) & (grads[1] == 0)) < 0.4


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="cell"):
        ModelConfig(vocab_size=5, cell="transformer")
