"""Batch sampling: one jitted `while_loop` that reads the prompts and then generates.

Every row starts from a zero state fed "<eos> <kind> prompt…", which is what the model saw at the
start of each record in training. Prompts of different lengths share one call: while step t is
still inside row b's prompt, the next input is forced to the prompt's next character; after that
it is sampled. The loop ends when every row has produced <eos> or `max_new` characters.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lstm.vocab import EOS, KIND_IDS, POST, REPLY, UNK, Vocab

PROMPT_BUCKET = 32  # prompt arrays are padded to a multiple of this, so jit compiles rarely


def pick(logits, keys, temperature, top_k, top_p):
    """Choose one token per row from logits (B, V), with one key and one setting per row (B,).

    Divide by the temperature, then softmax (temperature 0 means argmax). top_k 0 and top_p 1.0
    switch those filters off. Greedy argmax alone loops forever on real text; the default is 0.4.
    """
    vocab_size = logits.shape[-1]
    greedy = jnp.argmax(logits, axis=-1)
    scaled = logits / jnp.maximum(temperature, 1e-6)[:, None]
    desc = -jnp.sort(-scaled, axis=-1)  # (B, V), largest first
    k = jnp.where(top_k > 0, jnp.minimum(top_k, vocab_size), vocab_size)
    desc = jnp.where(jnp.arange(vocab_size) < k[:, None], desc, -jnp.inf)
    probs = jax.nn.softmax(desc, axis=-1)
    before = jnp.cumsum(probs, axis=-1) - probs  # mass of the tokens ranked above each one
    keep = jnp.maximum(jnp.sum(before < top_p[:, None], axis=-1), 1)  # (B,) tokens kept by top-p
    floor = jnp.take_along_axis(desc, (keep - 1)[:, None], axis=-1)  # (B, 1) smallest kept logit
    filtered = jnp.where(scaled >= floor, scaled, -jnp.inf)
    sampled = jax.vmap(jax.random.categorical)(keys, filtered)
    return jnp.where(temperature > 0, sampled, greedy)


@functools.partial(jax.jit, static_argnames=("graphdef", "max_new"))
def sample_tokens(graphdef, params, prompts, prompt_lens, keys, temperature, top_k, top_p, *, max_new):
    """prompts (B, P) int32, prompt_lens (B,) -> tokens (B, max_new) padded with <eos>, and the
    mean log-probability (B,) of each row's generated characters under the untempered model.

    keys, temperature, top_k and top_p are per row (B,): requests batched together keep their own
    settings, and a row's text depends only on its own key, not on what it was batched with."""
    model = nnx.merge(graphdef, params)
    batch, width = prompts.shape
    rows = jnp.arange(batch)
    banned = jnp.zeros(model.config.vocab_size, bool).at[jnp.array([UNK, POST, REPLY])].set(True)

    def cond(s):
        t, _, _, done, _, _ = s
        return (t < width + max_new) & ~jnp.all(done)

    def body(s):
        t, token, carry, done, out, logp = s
        logits, carry = model.step(token, carry)  # (B, V)
        logits = jnp.where(banned, -jnp.inf, logits)
        step_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, t)
        sampled = pick(logits, step_keys, temperature, top_k, top_p)
        in_prompt = t + 1 < prompt_lens
        token = jnp.where(in_prompt, prompts[:, jnp.minimum(t + 1, width - 1)], sampled)
        pos = t + 1 - prompt_lens  # where this token goes in `out`
        write = ~in_prompt & ~done
        out = out.at[rows, jnp.where(write, pos, max_new)].set(token, mode="drop")
        token_logp = jnp.take_along_axis(jax.nn.log_softmax(logits), token[:, None], axis=-1)[:, 0]
        logp = logp + jnp.where(write, token_logp, 0.0)
        done = done | (write & ((token == EOS) | (pos >= max_new - 1)))
        return t + 1, token, carry, done, out, logp

    start = (
        jnp.int32(0),
        prompts[:, 0],
        model.init_carry(batch),
        jnp.zeros(batch, bool),
        jnp.full((batch, max_new), EOS, jnp.int32),
        jnp.zeros(batch),
    )
    _, _, _, _, out, logp = jax.lax.while_loop(cond, body, start)
    lengths = jnp.sum(jnp.cumprod(out != EOS, axis=1), axis=1) + 1  # generated incl. <eos>
    return out, logp / jnp.minimum(lengths, max_new)


def encode_prompts(vocab: Vocab, modes: list[str], prompts: list[str], contexts: list[str | None]):
    """Each row as "<eos> [<post> context <eos>] <kind> prompt", padded to a bucket width ->
    (B, P) ids, (B,) lengths. A context is fed as the post before, the way posts follow each other
    in training."""
    encoded = []
    for mode, prompt, context in zip(modes, prompts, contexts, strict=True):
        before = vocab.encode_record("post", context) if context else []
        encoded.append([EOS, *before, KIND_IDS[mode], *vocab.encode(prompt)])
    longest = max(len(e) for e in encoded)
    width = -(-longest // PROMPT_BUCKET) * PROMPT_BUCKET
    ids = np.full((len(encoded), width), EOS, np.int32)
    for row, e in enumerate(encoded):
        ids[row, : len(e)] = e
    return ids, np.array([len(e) for e in encoded], np.int32)


def generate(
    model,
    vocab: Vocab,
    prompts: list[str],
    *,
    mode: str | list[str] = "post",
    context: str | None | list[str | None] = None,
    temperature: float | list[float] = 0.4,
    top_k: int | list[int] = 0,
    top_p: float | list[float] = 1.0,
    max_chars: int = 280,
    seed: int | list[int] = 0,
) -> list[tuple[str, float]]:
    """One completion per prompt, as (prompt + continuation, mean log-probability).

    Every setting is one value for all rows or a list with one per row. An int seed gives row i
    the seed `seed + i`.
    """
    rows = len(prompts)
    modes = mode if isinstance(mode, list) else [mode] * rows
    if bad := set(modes) - set(KIND_IDS):
        raise ValueError(f"mode must be 'post' or 'reply', not {sorted(bad)[0]!r}")
    contexts = context if isinstance(context, list) else [context] * rows
    seeds = seed if isinstance(seed, list) else list(range(seed, seed + rows))
    graphdef, params = nnx.split(model)
    ids, lens = encode_prompts(vocab, modes, prompts, contexts)
    out, logp = sample_tokens(
        graphdef,
        params,
        jnp.asarray(ids),
        jnp.asarray(lens),
        jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32)),
        jnp.broadcast_to(jnp.asarray(temperature, jnp.float32), (rows,)),
        jnp.broadcast_to(jnp.asarray(top_k, jnp.int32), (rows,)),
        jnp.broadcast_to(jnp.asarray(top_p, jnp.float32), (rows,)),
        max_new=max_chars,
    )
    out, logp = np.asarray(out), np.asarray(logp)
    return [(p + vocab.decode(row), float(lp)) for p, row, lp in zip(prompts, out, logp)]
