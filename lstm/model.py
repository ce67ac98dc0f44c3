"""The character-level recurrent language model: embedding -> N stacked LSTM (or GRU) layers -> logits.

Speed notes that shape the code:
- Each layer's input projection x @ W_ih is one big matmul over the whole sequence, outside
  `lax.scan`; the recurrent step only does h @ W_hh with all gates fused into one matmul.
- The first layer takes no W_ih at all: an embedding followed by a linear map is itself a lookup
  table, so the embedding row *is* the first layer's gate input (V x 4H instead of V x E, E x 4H).
- Inside, sequences are time-major (T, B, ...), the layout `lax.scan` walks.
"""

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from lstm import kernel


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    hidden: int = 256  # defaults: the best measured for a 5-minute budget on a 2-core CPU
    layers: int = 1
    cell: str = "lstm"  # "lstm" or "gru"
    residual: bool = False  # add each layer's input to its output (layers 2..N)
    dropout: float = 0.0  # between layers and before the head, training only
    # DropConnect on each layer's recurrent matrix W_hh (AWD-LSTM's weight drop), one mask per
    # batch, training only: the regulariser that lets a small export beat an n-gram
    # (docs/training.md).
    weight_drop: float = 0.0

    def __post_init__(self):
        if self.cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', not {self.cell!r}")
        if self.layers < 1 or self.hidden < 1 or self.vocab_size < 1:
            raise ValueError("vocab_size, hidden and layers must be positive")
        for name in ("dropout", "weight_drop"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), not {getattr(self, name)}")

    @property
    def gates(self) -> int:
        return 4 if self.cell == "lstm" else 3


class Layer(nnx.Module):
    """One recurrent layer. Takes the precomputed gate inputs, so it owns only W_hh and the bias."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        h = config.hidden
        self.cell = config.cell
        self.weight_drop = config.weight_drop
        self.w_hh = nnx.Param(nnx.initializers.orthogonal()(rngs.params(), (h, config.gates * h)))
        bias = jnp.zeros((config.gates * h,))
        if self.cell == "lstm":
            bias = bias.at[h : 2 * h].set(1.0)  # forget gate starts open: gates are (i, f, g, o)
        self.b = nnx.Param(bias)

    def __call__(self, xp, carry, drop_key=None, unroll=1, matmul_dtype=None):
        """xp (T, B, GH) gate inputs, carry per cell -> hs (T, B, H), carry. With a drop_key,
        W_hh is weight-dropped for the whole sequence. `unroll` and `matmul_dtype` are the
        kernel's speed knobs (lstm/kernel.py)."""
        w_hh = self.w_hh[...]
        if drop_key is not None and self.weight_drop > 0.0:
            keep = jax.random.bernoulli(drop_key, 1.0 - self.weight_drop, w_hh.shape)
            w_hh = jnp.where(keep, w_hh / (1.0 - self.weight_drop), 0.0)
        if self.cell == "lstm":
            return kernel.lstm_scan(xp + self.b[...], w_hh, carry, unroll, matmul_dtype)
        return kernel.gru_scan(xp, w_hh, self.b[...], carry, unroll, matmul_dtype)

    def step(self, xp, carry, w_hh):
        """One time step: xp (B, GH), w_hh as CharRNN.step_weights prepared it -> h (B, H), carry."""
        if self.cell == "lstm":
            carry = kernel.lstm_cell(xp + self.b[...], w_hh, carry)
            return carry[1], carry
        h = kernel.gru_cell(xp, w_hh, self.b[...], carry)
        return h, h

    def step_from(self, x, w_ih, carry, w_hh):
        """One time step of a layer after the first, from its input x (B, H) and the W_ih that
        projects it -> h (B, H), carry."""
        if self.cell == "lstm":
            carry = kernel.lstm_cell_input(x, w_ih, self.b[...], w_hh, carry)
            return carry[1], carry
        return self.step(x @ w_ih, carry, w_hh)


class CharRNN(nnx.Module):
    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.config = config
        h, gh = config.hidden, config.gates * config.hidden
        self.embed = nnx.Embed(config.vocab_size, gh, rngs=rngs)  # first layer's gate inputs
        # W_ih of layers 2..N, one (H, GH) matrix each.
        self.w_ih = nnx.List(
            [nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (h, gh))) for _ in range(config.layers - 1)]
        )
        self.layers = nnx.List([Layer(config, rngs=rngs) for _ in range(config.layers)])
        self.head = nnx.Linear(h, config.vocab_size, rngs=rngs)

    def init_carry(self, batch: int):
        # Separate arrays, not one shared zeros: the train step donates the carry's buffers.
        shape = (batch, self.config.hidden)
        if self.config.cell == "lstm":
            return tuple((jnp.zeros(shape), jnp.zeros(shape)) for _ in range(self.config.layers))
        return tuple(jnp.zeros(shape) for _ in range(self.config.layers))

    def __call__(self, tokens, carry, *, dropout_key=None, unroll: int = 1, matmul_dtype: str | None = None):
        """tokens (B, T) int -> logits (B, T, V), new carry. Dropout only when a key is given;
        `unroll` and `matmul_dtype` go to the kernel."""
        xp = self.embed(tokens.T)  # (T, B, GH)
        new_carry = []
        x = None
        for i, layer in enumerate(self.layers):
            if i > 0:
                w_ih = self.w_ih[i - 1][...]
                # (T, B, GH): one matmul for the sequence
                xp = kernel.project(x, w_ih) if matmul_dtype is None else kernel.matmul(x, w_ih, matmul_dtype)
            drop_key = None if dropout_key is None else jax.random.fold_in(dropout_key, 1000 + i)
            hs, c = layer(xp, carry[i], drop_key, unroll, matmul_dtype)  # (T, B, H)
            new_carry.append(c)
            if self.config.residual and i > 0:
                hs = hs + x
            x = self._dropout(hs, dropout_key, i)
        logits = self.head(x)  # (T, B, V)
        return jnp.swapaxes(logits, 0, 1), tuple(new_carry)

    def step_weights(self):
        """Each layer's (W_ih, W_hh) as its step reads them (kernel.sampler_weights; the first
        layer's W_ih None). A sampler prepares them once, before its loop, for every `step`."""
        prepare = kernel.sampler_weights if self.config.cell == "lstm" else lambda w: w
        return tuple(
            (None if i == 0 else prepare(self.w_ih[i - 1][...]), prepare(layer.w_hh[...]))
            for i, layer in enumerate(self.layers)
        )

    def step(self, token, carry, weights=None):
        """One character for generation: token (B,) -> logits (B, V), new carry. `weights` as
        step_weights made them; without them, prepared here."""
        weights = self.step_weights() if weights is None else weights
        xp = self.embed(token)  # (B, GH)
        new_carry = []
        x = None
        for i, (layer, (w_ih, w_hh)) in enumerate(zip(self.layers, weights, strict=True)):
            h, c = layer.step(xp, carry[i], w_hh) if i == 0 else layer.step_from(x, w_ih, carry[i], w_hh)
            new_carry.append(c)
            x = h + x if self.config.residual and i > 0 else h
        return self.head(x), tuple(new_carry)

    def _dropout(self, x, key, i):
        rate = self.config.dropout
        if key is None or rate == 0.0:
            return x
        keep = jax.random.bernoulli(jax.random.fold_in(key, i), 1.0 - rate, x.shape)
        return jnp.where(keep, x / (1.0 - rate), 0.0)
