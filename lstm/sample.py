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

from lstm import ngram as ngram_table
from lstm.vocab import EOS, KIND_IDS, POST, REPLY, UNK, Vocab

PROMPT_BUCKET = 32  # prompt arrays are padded to a multiple of this, so jit compiles rarely
CHUNK = 8  # sampler steps per trip of the while loop (see sample_tokens)


def pick(logits, uniform, temperature, top_k, top_p, *, filtered: bool):
    """Choose one token per row from logits (B, V), given one uniform draw in [0, 1) per row (B,)
    and one setting per row (B,).

    Divide by the temperature, then softmax (temperature 0 means argmax), then invert the CDF at
    the uniform draw. top_k 0 and top_p 1.0 switch those filters off; `filtered` (static) says
    whether any row uses them, because the sort they need costs more than everything else here.
    Greedy argmax alone loops forever on real text; the default temperature is 0.4.
    """
    vocab_size = logits.shape[-1]
    scaled = logits / jnp.maximum(temperature, 1e-6)[:, None]
    if filtered:
        desc = -jnp.sort(-scaled, axis=-1)  # (B, V), largest first
        k = jnp.where(top_k > 0, jnp.minimum(top_k, vocab_size), vocab_size)
        desc = jnp.where(jnp.arange(vocab_size) < k[:, None], desc, -jnp.inf)
        probs = jax.nn.softmax(desc, axis=-1)
        before = jnp.cumsum(probs, axis=-1) - probs  # mass of the tokens ranked above each one
        # (B,) tokens kept by top-p. Zero-probability tokens never count: their `before` is 1.0 give
        # or take rounding, which let top-k's cut-off tokens back in when top_p was 1.0.
        keep = jnp.maximum(jnp.sum((before < top_p[:, None]) & (probs > 0), axis=-1), 1)
        floor = jnp.take_along_axis(desc, (keep - 1)[:, None], axis=-1)  # (B, 1) smallest kept logit
        scaled = jnp.where(scaled >= floor, scaled, -jnp.inf)
    weights = jnp.exp(scaled - jnp.max(scaled, axis=-1, keepdims=True))  # unnormalised softmax
    # The running sum as one small matmul with an upper-triangular matrix of ones: XLA:CPU runs a
    # cumsum as several kernels (a padded reduce-window), and a sampler step at a small batch is
    # kernel overhead more than arithmetic. Same sums up to float32 rounding.
    cdf = weights @ jnp.triu(jnp.ones((vocab_size, vocab_size), weights.dtype))
    # The first token whose cumulative weight passes the draw; zero-weight (banned) tokens never do.
    sampled = jnp.sum(cdf <= uniform[:, None] * cdf[:, -1:], axis=-1)
    sampled = jnp.minimum(sampled, vocab_size - 1).astype(jnp.int32)
    return jnp.where(temperature > 0, sampled, jnp.argmax(logits, axis=-1).astype(jnp.int32))


def mixed_logits(logits, ngram: dict, history, known):
    """The served distribution as logits (B, V): ln((1 - w) softmax(logits) + w p_ngram), w the
    table's weight; the model's logits themselves, unchanged, at w = 0."""
    w = ngram["weight"]
    mixed = (1.0 - w) * jax.nn.softmax(logits) + w * ngram_table.probs(ngram, history, known)  # (B, V)
    return jnp.where(w > 0, jnp.log(mixed), logits)


@functools.partial(jax.jit, static_argnames=("graphdef", "max_new", "filtered"))
def sample_tokens(graphdef, params, prompts, prompt_lens, keys, temperature, top_k, top_p, lexicon=None, ngram=None,
                  *, max_new, filtered=False):
    """prompts (B, P) int32, prompt_lens (B,) -> tokens (B, max_new) padded with <eos>, and the
    mean log-probability (B,) of each row's generated characters under the untempered model.

    keys, temperature, top_k and top_p are per row (B,): requests batched together keep their own
    settings, and a row's text depends only on its own key, not on what it was batched with.

    At small batch the time goes to per-step overhead, not to arithmetic, so the loop is lean:
    all random numbers are drawn before it (one uniform per row and step); each step writes its
    token into one column of a (B, P + max_new) buffer, and each row's generated part is cut out
    of it once at the end; and each trip of the while loop runs CHUNK steps unrolled, so the "is
    every row done?" test (a device-to-host round trip on a GPU) happens once per CHUNK steps.
    Steps past the end only write into padding columns.

    `lexicon` is a Lexicon's arrays (lstm/lexicon.py) or None: with it, each row tracks its trie
    node, and a sampled character that would spell a word the person never wrote is banned. The
    log-probability stays the model's own, so best-of-n judges candidates as the model sees them.

    `ngram` is an NGramTable's arrays (lstm/ngram.py) or None: with it, each step's distribution is
    (1 - w) softmax(logits) + w p_ngram(the row's last order - 1 tokens), w the table's weight, and
    the temperature, the bans and the lexicon apply to that. The mixture is the served model, so
    the log-probability is the mixture's. At w = 0 the logits are the model's own, bit for bit."""
    model = nnx.merge(graphdef, params)
    batch, width = prompts.shape
    steps = width + max_new
    padded = steps + CHUNK  # room for the last chunk's overrun
    uniforms = jax.vmap(lambda key: jax.random.uniform(key, (padded,)))(keys).T  # (padded, B)
    weights = model.step_weights()  # packed for the native kernel once, not every step
    banned = jnp.zeros(model.config.vocab_size, bool).at[jnp.array([UNK, POST, REPLY])].set(True)

    context = 0 if ngram is None else ngram["levels"].shape[0] - 1  # n-gram context length

    def cond(s):
        t, _, _, done, _, _, _, _, _ = s
        return (t < steps) & ~jnp.all(done)

    def step(_, s):
        t, token, carry, done, out, logp, node, history, known = s
        logits, carry = model.step(token, carry, weights)  # (B, V)
        if ngram is not None:
            logits = mixed_logits(logits, ngram, history, known)
        logits = jnp.where(banned, -jnp.inf, logits)
        allowed = logits
        if lexicon is not None:
            following = lexicon["next"][node]  # (B, letters): the node after each letter
            column = lexicon["column"]
            spells = jnp.take(following, jnp.maximum(column, 0), axis=1) >= 0  # (B, V)
            ok = jnp.where(column >= 0, spells, lexicon["complete"][node][:, None])
            allowed = jnp.where(ok, logits, -jnp.inf)
        sampled = pick(allowed, uniforms[t], temperature, top_k, top_p, filtered=filtered)
        in_prompt = t + 1 < prompt_lens
        token = jnp.where(in_prompt, prompts[:, jnp.minimum(t + 1, width - 1)], sampled)
        if lexicon is not None:
            letter = lexicon["column"][token]
            after = jnp.take_along_axis(following, jnp.maximum(letter, 0)[:, None], axis=1)[:, 0]
            unknown = lexicon["complete"].shape[0] - 1  # a prompt's word the lexicon lacks
            node = jnp.where(letter >= 0, jnp.where(after >= 0, after, unknown), 0)
        out = jax.lax.dynamic_update_slice(out, token[:, None], (0, t))  # the token after position t
        write = ~in_prompt & ~done
        token_logp = jnp.take_along_axis(logits, token[:, None], axis=-1)[:, 0] - jax.nn.logsumexp(logits, axis=-1)
        logp = logp + jnp.where(write, token_logp, 0.0)
        done = done | (write & ((token == EOS) | (t + 2 - prompt_lens >= max_new)))
        history = jnp.concatenate([history[:, 1:], token[:, None]], axis=1) if context else history
        return t + 1, token, carry, done, out, logp, node, history, jnp.minimum(known + 1, context)

    def body(s):
        return jax.lax.fori_loop(0, CHUNK, step, s, unroll=True)

    start = (
        jnp.int32(0),
        prompts[:, 0],
        model.init_carry(batch),
        jnp.zeros(batch, bool),
        jnp.full((batch, padded), EOS, jnp.int32),
        jnp.zeros(batch),
        jnp.zeros(batch, jnp.int32),  # the lexicon's node: outside any word
        # The n-gram's context: the tokens fed so far, newest last, and how many of them are real.
        jnp.zeros((batch, context), jnp.int32).at[:, -1:].set(prompts[:, :1]) if context else
        jnp.zeros((batch, 0), jnp.int32),
        jnp.full(batch, min(context, 1), jnp.int32),
    )
    _, _, _, _, out, logp, _, _, _ = jax.lax.while_loop(cond, body, start)
    # Row b's generated characters follow its prompt: columns prompt_len - 1 onwards.
    out = jnp.take_along_axis(out, prompt_lens[:, None] - 1 + jnp.arange(max_new), axis=1)
    out = jnp.where(jnp.cumsum(out == EOS, axis=1) - (out == EOS) > 0, EOS, out)  # nothing after the first <eos>
    lengths = jnp.sum(jnp.cumprod(out != EOS, axis=1), axis=1) + 1  # generated incl. <eos>
    return out, logp / jnp.minimum(lengths, max_new)


# One key per row from its seed, compiled once: traced anew on every call, the vmap cost more than
# half a millisecond of a one-text request.
_row_keys = jax.jit(jax.vmap(jax.random.key))


def encode_prompts(vocab: Vocab, modes: list[str], prompts: list[str], contexts: list):
    """Each row as "<eos> [<post> context <eos>]... <kind> prompt", padded to a bucket width ->
    (B, P) ids, (B,) lengths. A context (one text, or a tuple of them oldest first: a conversation)
    is fed as the posts before, the way posts follow each other in training."""
    encoded = []
    for mode, prompt, context in zip(modes, prompts, contexts, strict=True):
        texts = context if isinstance(context, tuple) else (context,)
        before = [i for text in texts if text for i in vocab.encode_record("post", text)]
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
    context: str | tuple[str, ...] | None | list = None,
    temperature: float | list[float] = 0.4,
    top_k: int | list[int] = 0,
    top_p: float | list[float] = 1.0,
    max_chars: int = 280,
    seed: int | list[int] = 0,
    lexicon=None,
    ngram=None,
) -> list[tuple[str, float]]:
    """One completion per prompt, as (prompt + continuation, mean log-probability).

    Every setting is one value for all rows or a list with one per row. An int seed gives row i
    the seed `seed + i`. With a `lexicon` (lstm/lexicon.py), only the person's words are spelled.
    With an `ngram` (lstm/ngram.py's NGramTable), its counts are mixed in at the table's weight.
    """
    rows = len(prompts)
    modes = mode if isinstance(mode, list) else [mode] * rows
    if bad := set(modes) - set(KIND_IDS):
        raise ValueError(f"mode must be 'post' or 'reply', not {sorted(bad)[0]!r}")
    seeds = seed if isinstance(seed, list) else list(range(seed, seed + rows))
    columns = [prompts, modes, context, seeds, temperature, top_k, top_p]
    # Rows are padded to a power of two with copies of row 0 (which end when it ends), so a server
    # compiles the sampler for a handful of batch shapes, not one per request size.
    padded = 1 << (rows - 1).bit_length()
    columns = [(c if isinstance(c, list) else [c] * rows) + [c[0] if isinstance(c, list) else c] * (padded - rows)
               for c in columns]
    all_prompts, modes, contexts, seeds, temperature, top_k, top_p = columns
    graphdef, params = nnx.split(model)
    ids, lens = encode_prompts(vocab, modes, all_prompts, contexts)
    top_k, top_p = np.asarray(top_k, np.int32), np.asarray(top_p, np.float32)
    out, logp = sample_tokens(
        graphdef,
        params,
        jnp.asarray(ids),
        jnp.asarray(lens),
        _row_keys(jnp.asarray(seeds, jnp.uint32)),
        jnp.asarray(temperature, jnp.float32),
        jnp.asarray(top_k),
        jnp.asarray(top_p),
        None if lexicon is None else lexicon.on_device,
        None if ngram is None else ngram.on_device,
        max_new=vocab.steps_for(max_chars),
        filtered=bool((top_k > 0).any() or (top_p < 1.0).any()),
    )
    out, logp = np.asarray(out)[:rows], np.asarray(logp)[:rows]
    # Subword steps can overshoot: a continuation is never longer than max_chars characters.
    return [(p + vocab.decode(row)[:max_chars], float(lp)) for p, row, lp in zip(prompts, out, logp, strict=True)]
