import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lstm import kernel
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


def test_lstm_custom_gradient_equals_autodiff():
    def reference(xp, w_hh, carry):  # plain autodiff through lax.scan
        def step(c, xt):
            c = kernel.lstm_cell(xt, w_hh, c)
            return c, c[1]

        carry, hs = jax.lax.scan(step, carry, xp)
        return hs, carry

    keys = jax.random.split(jax.random.key(0), 4)
    xp = jax.random.normal(keys[0], (9, 3, 20))
    w_hh = 0.5 * jax.random.normal(keys[1], (5, 20))
    carry = (jax.random.normal(keys[2], (3, 5)), jax.random.normal(keys[3], (3, 5)))

    def loss(scan):
        def f(xp, w_hh, carry):
            hs, (c, h) = scan(xp, w_hh, carry)
            return jnp.sum(jnp.sin(hs)) + jnp.sum(c**2) + jnp.sum(3 * h)

        return jax.grad(f, argnums=(0, 1, 2))(xp, w_hh, carry)

    for ours, theirs in zip(jax.tree.leaves(loss(kernel.lstm_scan)), jax.tree.leaves(loss(reference))):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="cell"):
        ModelConfig(vocab_size=5, cell="transformer")
