"""The LSTM kernel against the textbook cell: the fused gate nonlinearity (one tanh for all four
gates) equals jax.nn.sigmoid and jnp.tanh within float32 rounding, and a scan's loss and gradients
equal those of plain autodiff through the textbook cell within 1e-5."""

import jax
import jax.numpy as jnp
import numpy as np

from lstm import kernel

GATE_TOLERANCE = 1e-6  # float32 rounding of (1 + tanh(x / 2)) / 2 against 1 / (1 + exp(-x))
GRADIENT_TOLERANCE = 1e-5


def textbook_cell(xp, w_hh, carry):
    c, h = carry
    i, f, g, o = jnp.split(xp + h @ w_hh, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return c, jax.nn.sigmoid(o) * jnp.tanh(c)


def test_the_fused_gates_equal_sigmoid_and_tanh():
    x = jnp.linspace(-30.0, 30.0, 4 * 6001).reshape(6001, 4)  # every gate sees the whole range
    x = jnp.concatenate([x[:, k:k + 1].repeat(8, axis=1) for k in range(4)], axis=1).reshape(-1, 32)
    acts = kernel.lstm_gates(x)
    i, f, g, o = jnp.split(x, 4, axis=-1)
    expected = jnp.concatenate([jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)], axis=-1)
    assert float(jnp.max(jnp.abs(acts - expected))) <= GATE_TOLERANCE


def textbook_scan(xp, w_hh, carry):
    """The textbook cell through `lax.scan`, differentiated by plain autodiff."""
    def step(c, xt):
        c = textbook_cell(xt, w_hh, c)
        return c, c[1]

    carry, hs = jax.lax.scan(step, carry, xp)
    return hs, carry


def loss_and_grads(scan, xp, w_hh, carry):
    """A loss that reads every output of `scan`, and its gradients with respect to every input."""
    def f(xp, w_hh, carry):
        hs, (c, h) = scan(xp, w_hh, carry)
        return jnp.sum(jnp.sin(hs)) + jnp.sum(c**2) + jnp.sum(3 * h)

    return jax.value_and_grad(f, argnums=(0, 1, 2))(xp, w_hh, carry)


def test_a_scan_matches_the_textbook_cell_in_loss_and_gradients():
    keys = jax.random.split(jax.random.key(1), 4)
    xp = 2.0 * jax.random.normal(keys[0], (16, 4, 32))
    w_hh = 0.5 * jax.random.normal(keys[1], (8, 32))
    carry = (jax.random.normal(keys[2], (4, 8)), jax.random.normal(keys[3], (4, 8)))

    ours, theirs = loss_and_grads(kernel.lstm_scan, xp, w_hh, carry), loss_and_grads(textbook_scan, xp, w_hh, carry)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-6)
    for a, b in zip(jax.tree.leaves(ours[1]), jax.tree.leaves(theirs[1]), strict=True):
        np.testing.assert_allclose(a, b, atol=GRADIENT_TOLERANCE)
    for a, b in zip(kernel.lstm_cell(xp[0], w_hh, carry), textbook_cell(xp[0], w_hh, carry), strict=True):
        np.testing.assert_allclose(a, b, atol=GATE_TOLERANCE)


def test_sampling_with_a_fixed_seed_picks_what_the_textbook_cell_picks(monkeypatch):
    """The gates' rounding moves a logit by about 1e-6: no pick of a fixed-seed sample changes."""
    from flax import nnx

    from lstm.model import CharRNN, ModelConfig
    from lstm.sample import generate
    from lstm.vocab import Vocab

    vocab = Vocab(chars=tuple("abcdefghij klmnop"))
    model = CharRNN(ModelConfig(vocab_size=len(vocab), hidden=32, layers=2), rngs=nnx.Rngs(0))

    def sample():
        jax.clear_caches()  # the sampler is jitted: trace it anew with the cell in force
        return [t for t, _ in generate(model, vocab, ["ab"] * 4, temperature=0.7, max_chars=60, seed=11)]

    fused = sample()  # on a CPU with a compiler: the native kernel's cells (lstm/native.py)
    monkeypatch.setattr(kernel.native, "applies", lambda *args: False)
    monkeypatch.setattr(kernel, "lstm_cell", lambda xp, w_hh, carry, dtype=None: textbook_cell(xp, w_hh, carry))
    assert sample() == fused and len(set(fused)) > 1
