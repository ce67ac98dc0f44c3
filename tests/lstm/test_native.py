"""The compiled CPU kernel of the LSTM recurrence (lstm/lstm_cpu.cc) against the pure-JAX code:
the scan's outputs and gradients, and the sampler's cell, within float32 rounding, over shapes that
take each of its code paths; and every way the build can fail leaves the pure-JAX code running."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm import kernel, native
from tests.lstm.test_kernel import GRADIENT_TOLERANCE as TEXTBOOK_TOLERANCE
from tests.lstm.test_kernel import loss_and_grads, textbook_scan

# The kernel sums each matmul in another order and uses its own rational tanh and sigmoid: within
# float32 rounding of the pure-JAX scan, which tests/lstm/test_kernel.py bounds against the
# textbook cell.
OUTPUT_TOLERANCE = 2e-6
GRADIENT_TOLERANCE = 1e-5

# (steps, batch, hidden): a batch that is not a multiple of the 6-row tile; a hidden size of an odd
# number of 16-wide blocks (the backward's one-block path); one step of one row; a full-size tile.
SHAPES = [(7, 5, 16), (3, 13, 48), (1, 1, 32), (9, 64, 64)]


@pytest.fixture(scope="module")
def built():
    if native._compiler() is None:
        pytest.skip("no C++ compiler on this machine: dann runs the pure-JAX scan")
    assert native.available(), "the kernel failed to build or load (see the warning above)"


def inputs(steps, batch, hidden, seed=0):
    keys = jax.random.split(jax.random.key(seed), 4)
    xp = 2.0 * jax.random.normal(keys[0], (steps, batch, 4 * hidden))
    w_hh = jax.random.normal(keys[1], (hidden, 4 * hidden)) / hidden**0.5
    carry = (jax.random.normal(keys[2], (batch, hidden)), jax.random.normal(keys[3], (batch, hidden)))
    return xp, w_hh, carry


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_the_kernel_gives_the_pure_jax_scans_outputs(built, shape):
    xp, w_hh, carry = inputs(*shape)
    assert native.applies(xp, w_hh, None)
    hs, cs, acts = jax.jit(native.forward)(xp, w_hh, *carry)
    expected_hs, _, (expected_cs, expected_acts) = kernel._lstm_forward(xp, w_hh, carry, 1, None)
    for ours, theirs in ((hs, expected_hs), (cs, expected_cs), (acts, expected_acts)):
        np.testing.assert_allclose(ours, theirs, atol=OUTPUT_TOLERANCE)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_the_kernel_gives_the_pure_jax_scans_loss_and_gradients(built, shape, monkeypatch):
    xp, w_hh, carry = inputs(*shape, seed=1)
    ours = loss_and_grads(kernel.lstm_scan, xp, w_hh, carry)
    monkeypatch.setattr(native, "applies", lambda *args: False)
    theirs = loss_and_grads(kernel.lstm_scan, xp, w_hh, carry)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(ours[1]), jax.tree.leaves(theirs[1]), strict=True):
        np.testing.assert_allclose(a, b, atol=GRADIENT_TOLERANCE)


@pytest.mark.parametrize("batch", [1, 3, 8, 13])
def test_the_kernels_cell_gives_the_pure_jax_cell(built, batch):
    """The sampler's step, on weights packed as a generation packs them. That fixed-seed samples
    keep their picks is tests/lstm/test_kernel.py's."""
    xp, w_hh, carry = inputs(1, batch, 48, seed=2)
    packed = kernel.sampler_weights(w_hh)
    assert packed.shape == (3, 48, 4, 16)  # the kernel's layout, not the weight as stored
    step = jax.jit(lambda xp, w, carry: kernel.lstm_cell(xp, w, carry))
    for a, b in zip(step(xp[0], packed, carry), step(xp[0], w_hh, carry), strict=True):
        np.testing.assert_allclose(a, b, atol=OUTPUT_TOLERANCE)


@pytest.mark.parametrize("batch", [1, 8])
def test_the_kernels_cell_with_its_input_projection_gives_the_pure_jax_step(built, batch):
    """A second layer's step: gates = b + x @ W_ih + h @ W_hh in one call, W_ih taller than W_hh."""
    _, w_hh, carry = inputs(1, batch, 32, seed=3)
    keys = jax.random.split(jax.random.key(4), 3)
    x, w_ih, b = (jax.random.normal(keys[0], (batch, 48)), 0.2 * jax.random.normal(keys[1], (48, 128)),
                  jax.random.normal(keys[2], (128,)))
    step = jax.jit(lambda *args: kernel.lstm_cell_input(*args))
    ours = step(x, kernel.sampler_weights(w_ih), b, kernel.sampler_weights(w_hh), carry)
    for a, b_ in zip(ours, step(x, w_ih, b, w_hh, carry), strict=True):
        np.testing.assert_allclose(a, b_, atol=OUTPUT_TOLERANCE)


def test_the_cell_refuses_a_weight_that_is_not_packed(built):
    """A weight as stored has the packed weight's size: read as one, it would give wrong gates
    without a word, so the kernel checks the shape."""
    xp, w_hh, carry = inputs(1, 2, 32)
    with pytest.raises(Exception, match="packed"):
        jax.block_until_ready(native.cell(xp[0], w_hh, *carry))
    with pytest.raises(Exception, match="packed"):
        jax.block_until_ready(native.cell_input(carry[1], w_hh, jnp.zeros(128), w_hh, *carry))


def test_the_kernel_matches_the_textbook_cell_in_loss_and_gradients(built):
    """Directly against plain autodiff through the textbook cell, at the pure-JAX scan's tolerance
    (tests/lstm/test_kernel.py's test holds that scan there at a hidden size the kernel does not take)."""
    xp, w_hh, carry = inputs(9, 5, 32, seed=5)

    ours, theirs = loss_and_grads(kernel.lstm_scan, xp, w_hh, carry), loss_and_grads(textbook_scan, xp, w_hh, carry)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(ours[1]), jax.tree.leaves(theirs[1]), strict=True):
        np.testing.assert_allclose(a, b, atol=TEXTBOOK_TOLERANCE)


def test_it_takes_only_what_it_was_built_for(built):
    xp, w_hh, _ = inputs(2, 3, 16)
    assert native.applies(xp, w_hh, None)
    assert not native.applies(xp, w_hh, "bfloat16")  # the mixed-precision knob stays pure JAX
    odd_xp, odd_w, _ = inputs(2, 3, 24)
    assert not native.applies(odd_xp, odd_w, None)  # not a multiple of the vector width


PROBE = """
import jax, jax.numpy as jnp
from dann.process import configure_logging
configure_logging()
from lstm import kernel, native
xp = jnp.ones((3, 2, 64)); w = jnp.ones((16, 64)) * 0.01; carry = (jnp.zeros((2, 16)), jnp.zeros((2, 16)))
grad = jax.grad(lambda xp: kernel.lstm_scan(xp, w, carry)[0].sum())(xp)
print("available", native.available(), "finite", bool(jnp.isfinite(grad).all()))
"""


def run_probe(tmp_path, **env):
    environment = os.environ | {"DANN_NATIVE_DIR": str(tmp_path / "native")} | env
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=environment, timeout=300)


def test_a_failed_build_warns_once_and_trains_on_the_pure_jax_scan(tmp_path):
    result = run_probe(tmp_path, CXX="/bin/false")
    assert result.returncode == 0, result.stderr
    assert "available False finite True" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if "native LSTM kernel is not used" in line]
    assert len(warnings) == 1 and "/bin/false failed on lstm_cpu.cc" in warnings[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "native").glob("*.so"))  # nothing half-built is left to load


def test_switched_off_it_builds_nothing(tmp_path):
    result = run_probe(tmp_path, DANN_NATIVE_LSTM="off")
    assert result.returncode == 0, result.stderr
    assert "available False finite True" in result.stdout and result.stderr == ""
    assert not (tmp_path / "native").exists()
