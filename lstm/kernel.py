"""Recurrent cells and their scans over time, as pure functions of arrays.

Gate inputs `xp` arrive precomputed (the input projection is hoisted out of the loop), so each
step does one fused matmul h @ W_hh. LSTM gates are ordered (i, f, g, o); GRU gates (r, z, n).
"""

import functools

import jax
import jax.numpy as jnp

from lstm import native

# The speed knobs arrive as arguments (trainer/config.py's SpeedConfig resolves them): `unroll`,
# time steps per iteration of the scans' loops, and `dtype`, the recurrent matmuls' input type
# (None: float32), always accumulated in float32. Both are static: a change compiles anew.


def matmul(a, b, dtype=None):
    if dtype is None:
        return a @ b
    return jnp.matmul(a.astype(dtype), b.astype(dtype), preferred_element_type=jnp.float32)


def lstm_gates(gates):
    """(..., 4H) pre-activations -> (..., 4H) activations: sigmoid for i, f and o, tanh for g.

    All four through one tanh, as sigmoid(x) = (1 + tanh(x / 2)) / 2: XLA:CPU computes tanh with a
    fast rational approximation and sigmoid through exp and a division, at half tanh's rate
    (docs/measurements.md), and one elementwise pass over the whole row fuses into one kernel
    where four slices took four. Equal to jax.nn.sigmoid and jnp.tanh within float32 rounding
    (tests/lstm/test_kernel.py)."""
    hidden = gates.shape[-1] // 4
    half, one = jnp.full((hidden,), 0.5, gates.dtype), jnp.ones((hidden,), gates.dtype)
    scale = jnp.concatenate([half, half, one, half])
    offset = jnp.concatenate([half, half, jnp.zeros_like(one), half])
    return jnp.tanh(gates * scale) * scale + offset


def sampler_weights(w):
    """A weight (K, 4H) of an LSTM layer as lstm_cell and lstm_cell_input read it, prepared once
    before a sampler's loop: packed for the native kernel where it applies (native.pack), else as
    it is."""
    return native.pack(w) if native.applies(w, w, None) else w


def lstm_cell(xp, w_hh, carry, dtype=None):
    """xp (B, 4H) with bias added, w_hh (H, 4H) or as sampler_weights prepared it, carry (c, h) ->
    new (c, h). The sampler's step: no gradient flows through it; a packed w_hh runs the native
    kernel's cell."""
    c, h = carry
    if w_hh.ndim == 4:
        return native.cell(xp, w_hh, c, h)
    i, f, g, o = jnp.split(lstm_gates(xp + matmul(h, w_hh, dtype)), 4, axis=-1)  # (B, H) each
    c = f * c + i * g
    h = o * jnp.tanh(c)
    return c, h


def lstm_cell_input(x, w_ih, b, w_hh, carry):
    """One step of a layer after the first: x (B, H_in) its input -> new (c, h), as lstm_cell(x @
    w_ih + b, ...), the weights as sampler_weights prepared them. On the native kernel the input
    projection is part of the step."""
    c, h = carry
    if w_hh.ndim == 4:
        return native.cell_input(x, w_ih, b, w_hh, c, h)
    return lstm_cell(x @ w_ih + b, w_hh, carry)


@jax.custom_vjp
def project(x, w):
    """x @ w, with its weight gradient as `transposed_product`."""
    return x @ w


def _project_fwd(x, w):
    return x @ w, (x, w)


def _project_bwd(saved, d):
    x, w = saved
    return d @ w.T, transposed_product(x.reshape(-1, w.shape[0]), d.reshape(-1, w.shape[1]))


project.defvjp(_project_fwd, _project_bwd)


def transposed_product(a, b):
    """aᵀ @ b for a (N, K), b (N, M), the weight gradient of x @ W.

    With aᵀ materialised first. Written plainly, XLA:CPU folds the transpose into the dot and
    hands a dot that contracts both operands' first axes to its generic matmul, which runs it
    asynchronously beside the next steps, slower than its usual matmul library runs the plain
    product, and the LSTM kernel's call waits for it. The copy of `a` costs less than that
    (docs/measurements.md). Other backends get the plain product."""
    if jax.default_backend() != "cpu":
        return a.T @ b
    return jax.lax.optimization_barrier(a.T) @ b


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def lstm_scan(xp, w_hh, carry, unroll=1, dtype=None):
    """xp (T, B, 4H) with bias added, w_hh (H, 4H), carry (c, h) (B, H) -> hs (T, B, H), final (c, h).

    The gradient is hand-written (below): autodiff through `lax.scan` would accumulate dW_hh one
    small (H, B) @ (B, 4H) matmul per time step. Here the backward scan carries only the recurrent
    gradient, and dW_hh is one (H, T*B) @ (T*B, 4H) matmul after it.
    """
    (hs, carry), _ = _lstm_scan_fwd(xp, w_hh, carry, unroll, dtype)
    return hs, carry


def _lstm_forward(xp, w_hh, carry, unroll, dtype):
    def step(carry, xt):
        c_prev, h = carry
        acts = lstm_gates(xt + matmul(h, w_hh, dtype))  # (B, 4H)
        i, f, g, o = jnp.split(acts, 4, axis=-1)
        c = f * c_prev + i * g
        h = o * jnp.tanh(c)
        return (c, h), (h, c, acts)

    carry, (hs, cs, acts) = jax.lax.scan(step, carry, xp, unroll=unroll)
    return hs, carry, (cs, acts)


def _lstm_scan_fwd(xp, w_hh, carry, unroll, dtype):
    if native.applies(xp, w_hh, dtype) and xp.shape[0] > 0:
        c0, h0 = carry
        hs, cs, acts = native.forward(xp, w_hh, c0, h0)
        return (hs, (cs[-1], hs[-1])), (w_hh, carry, hs, cs, acts)
    hs, final, (cs, acts) = _lstm_forward(xp, w_hh, carry, unroll, dtype)
    return (hs, final), (w_hh, carry, hs, cs, acts)


def _lstm_scan_bwd(unroll, dtype, saved, grads):
    w_hh, (c0, h0), hs, cs, acts = saved
    d_hs, (d_c_last, d_h_last) = grads
    hidden = h0.shape[-1]
    h_prev = jnp.concatenate([h0[None], hs[:-1]])  # (T, B, H): h_{t-1}
    if native.applies(acts, w_hh, dtype) and acts.shape[0] > 0:
        d_xp, d_c0, d_h0 = native.backward(w_hh, c0, cs, acts, d_hs, d_c_last, d_h_last)
        return d_xp, transposed_product(h_prev.reshape(-1, hidden), d_xp.reshape(-1, 4 * hidden)), (d_c0, d_h0)
    c_prev = jnp.concatenate([c0[None], cs[:-1]])  # (T, B, H): c_{t-1}
    w_hh_t = w_hh.T

    def step(carry, t_inputs):
        d_c, d_h = carry  # gradients flowing back from step t+1
        d_h_out, c, c_before, act = t_inputs
        i, f, g, o = jnp.split(act, 4, axis=-1)
        d_h = d_h + d_h_out
        tanh_c = jnp.tanh(c)
        d_c = d_c + d_h * o * (1.0 - tanh_c**2)
        d_gates = jnp.concatenate(  # (B, 4H), through each gate's nonlinearity
            [d_c * g * i * (1.0 - i), d_c * c_before * f * (1.0 - f), d_c * i * (1.0 - g**2), d_h * tanh_c * o * (1.0 - o)],
            axis=-1,
        )
        return (d_c * f, matmul(d_gates, w_hh_t, dtype)), d_gates

    (d_c0, d_h0), d_xp = jax.lax.scan(step, (d_c_last, d_h_last), (d_hs, cs, c_prev, acts), reverse=True,
                                      unroll=unroll)
    d_w_hh = matmul(h_prev.reshape(-1, hidden).T, d_xp.reshape(-1, 4 * hidden), dtype)  # one big matmul
    return d_xp, d_w_hh, (d_c0, d_h0)


lstm_scan.defvjp(_lstm_scan_fwd, _lstm_scan_bwd)


def gru_cell(xp, w_hh, b, h, dtype=None):
    """xp (B, 3H), w_hh (H, 3H), b (3H,), h (B, H) -> new h. The reset gate scales h @ W_hn."""
    xr, xz, xn = jnp.split(xp + b, 3, axis=-1)
    hr, hz, hn = jnp.split(matmul(h, w_hh, dtype), 3, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    return (1.0 - z) * n + z * h


def gru_scan(xp, w_hh, b, h, unroll=1, dtype=None):
    """xp (T, B, 3H) -> hs (T, B, H), final h."""

    def step(h, xt):
        h = gru_cell(xt, w_hh, b, h, dtype)
        return h, h

    h, hs = jax.lax.scan(step, h, xp, unroll=unroll)
    return hs, h
