"""The n-gram the served model mixes in: Kneser-Ney counts as a hashed table read on the device.

A character LSTM trained for minutes on a CPU does not hold long repeated spans (a stock phrase,
an attribution) that counting holds at once, and the counting model does not generalise as the
LSTM does. Their mixture, p = (1 - w) p_lstm + w p_ngram with w fitted on the validation posts,
beats both (docs/training.md). The trainer counts (trainer/baselines.py) and builds this table;
the checkpoint stores it; the sampler and the trainer's evaluation read it with `probs`, inside
jit.

Interpolated Kneser-Ney is a recursion over context lengths j = 0 .. order - 1:

    p_j(w | h) = a(h, w) + b(h) p_{j-1}(w | h')   when h (j tokens) was seen, else p_{j-1}(w | h')

where a(h, w) = (c(hw) - D) / c(h) for the tokens seen after h, b(h) = (discounted mass) / c(h),
and h' is h without its oldest token; below j = 0 is uniform. The table stores, per seen context,
its entries (token, a) and b: the entries of a context followed by many tokens as a dense row,
the others (nearly all) contiguously, read at a fixed width. Contexts are found by hashing their tokens, newest
first, into two independent 32-bit hashes: one picks a slot of an open-addressing table (linear
probing, at most PROBES slots), the other is the fingerprint stored per context. A context the
table does not find uses the lower orders, as an unseen one does, so what `probs` returns is
always a proper distribution: every b(h) is exactly the mass the a(h, .) leave.

JAX runs in 32 bits (no x64), which is why the keys are hashes, not the int64 digit keys the
trainer counts with.
"""

import dataclasses
import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np

log = logging.getLogger("dann.ngram")

SPARSE = 8  # a context with more entries than this gets a dense row
PROBES = 16  # slots a lookup checks; the build places every context within them (or drops it, logged)
SEEDS = (0x811C9DC5, 0x9747B28C)
PRIMES = (0x01000193, 0x5BD1E995)
LEVEL_SALT = (0x85EBCA77, 0xC2B2AE3D)


def _fmix(h):
    """murmur3's finaliser: spreads every input bit over the 32 (numpy or jax uint32 arrays)."""
    h = h ^ (h >> 16)
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def _hashes(xp, newest_first: list, level: int):
    """(slot hash, fingerprint) of contexts given as their tokens, newest first, each (N,)."""
    out = []
    for seed, prime, salt in zip(SEEDS, PRIMES, LEVEL_SALT, strict=True):
        h = xp.full(newest_first[0].shape if newest_first else (1,), seed, xp.uint32)
        for token in newest_first:
            h = (h ^ (token.astype(xp.uint32) + xp.uint32(1))) * xp.uint32(prime)
        out.append(_fmix(h ^ xp.uint32((level * salt) & 0xFFFFFFFF)))
    return out[0], out[1] | xp.uint32(1)  # fingerprint 0 never occurs


@dataclasses.dataclass(frozen=True, eq=False)
class NGramTable:
    order: int  # the longest n-gram: contexts of up to order - 1 tokens
    vocab_size: int
    weight: float  # of the n-gram in the mixture, fitted on the validation posts
    slots: np.ndarray  # (T,) int32: context index, -1 for an empty slot; T a power of two
    fingerprints: np.ndarray  # (C,) uint32
    offsets: np.ndarray  # (C + 1,) int32: context i's sparse entries are [offsets[i], offsets[i + 1])
    backoff: np.ndarray  # (C,) float32: b(h)
    tokens: np.ndarray  # (E + width,) int32: the sparse entries' tokens, padded for the fixed-width read
    values: np.ndarray  # (E + width,) float32: a(h, w)
    width: int  # the most sparse entries any context has (at most SPARSE)
    dense_rows: np.ndarray  # (C,) int32: the context's row of `dense`, 0 for a sparse context
    dense: np.ndarray  # (R + 1, V) float32: a(h, .) of the contexts with more than SPARSE entries

    @classmethod
    def build(cls, levels: list[dict], vocab_size: int, weight: float = 0.0) -> "NGramTable":
        """levels[j] for contexts of j tokens, each a dict of numpy arrays:
        `contexts` (C_j, j) int (oldest token first), `offsets` (C_j + 1,) into `tokens` and
        `values` (E_j,), and `backoff` (C_j,)."""
        order = len(levels)
        fingerprints, slot_hashes, offsets, backoff, tokens, values = [], [], [], [], [], []
        base = 0
        for j, level in enumerate(levels):
            contexts = np.asarray(level["contexts"], np.int64).reshape(len(level["backoff"]), j)
            slot_hash, fingerprint = _hashes(np, [contexts[:, j - 1 - i] for i in range(j)], j)
            slot_hashes.append(np.broadcast_to(slot_hash, (len(contexts),)))
            fingerprints.append(np.broadcast_to(fingerprint, (len(contexts),)))
            offsets.append(np.asarray(level["offsets"][:-1], np.int64) + base)
            backoff.append(level["backoff"])
            tokens.append(level["tokens"])
            values.append(level["values"])
            base += len(level["tokens"])
        slot_hash, fingerprints = np.concatenate(slot_hashes), np.concatenate(fingerprints)
        offsets = np.concatenate([*offsets, [base]]).astype(np.int64)
        tokens, values = np.concatenate(tokens).astype(np.int32), np.concatenate(values).astype(np.float32)
        # Contexts followed by many different tokens (a space, "the ") are few: their entries go
        # into dense rows; the rest keep at most SPARSE entries each, read at a fixed width.
        counts = np.diff(offsets)
        owner = np.repeat(np.arange(len(counts)), counts)
        wide = counts > SPARSE
        dense_rows = np.zeros(len(counts), np.int32)
        dense_rows[wide] = np.arange(1, wide.sum() + 1)  # row 0 is all zeros: a sparse context's
        dense = np.zeros((wide.sum() + 1, vocab_size), np.float32)
        in_dense = wide[owner]
        dense[dense_rows[owner[in_dense]], tokens[in_dense]] = values[in_dense]
        kept = np.where(wide, 0, counts)
        offsets = np.concatenate([[0], np.cumsum(kept)]).astype(np.int32)
        width = int(kept.max()) if len(kept) else 1
        slots, dropped = _place(slot_hash)
        if dropped:
            log.info("n-gram table: %d of %d contexts found no slot and are served by their lower orders",
                     dropped, len(slot_hash))
        return cls(order, vocab_size, float(weight), slots, fingerprints.astype(np.uint32), offsets,
                   np.concatenate(backoff).astype(np.float32),
                   np.concatenate([tokens[~in_dense], np.zeros(width, np.int32)]),
                   np.concatenate([values[~in_dense], np.zeros(width, np.float32)]), width, dense_rows, dense)

    def with_weight(self, weight: float) -> "NGramTable":
        return dataclasses.replace(self, weight=float(weight))

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays().values())

    def arrays(self) -> dict[str, np.ndarray]:
        return {"slots": self.slots, "fingerprints": self.fingerprints, "offsets": self.offsets,
                "backoff": self.backoff, "tokens": self.tokens, "values": self.values,
                "dense_rows": self.dense_rows, "dense": self.dense}

    def settings(self) -> dict:
        return {"order": self.order, "vocab_size": self.vocab_size, "weight": self.weight, "width": self.width,
                "contexts": len(self.fingerprints), "entries": len(self.tokens) - self.width,
                "dense_contexts": len(self.dense) - 1}

    @classmethod
    def from_arrays(cls, arrays: dict, settings: dict) -> "NGramTable":
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        if "dense" not in arrays:  # every context sparse, as the first tables were written
            arrays |= {"dense_rows": np.zeros(len(arrays["fingerprints"]), np.int32),
                       "dense": np.zeros((1, settings["vocab_size"]), np.float32)}
        return cls(settings["order"], settings["vocab_size"], settings["weight"], width=settings["width"], **arrays)

    @functools.cached_property
    def on_device(self) -> dict:
        """The arrays the sampler reads, as device arrays (the width and order are in their shapes).

        Laid out for the lookup's few random reads: each slot holds its context's fingerprint
        beside its index, so the 16 probes of a level are one or two cache lines; each context's
        back-off, dense row and span are one record; each entry's token and value sit together."""
        bits = lambda a: np.asarray(a, np.float32).view(np.int32)
        slot_fingerprint = np.where(self.slots >= 0, self.fingerprints.view(np.int32)[np.maximum(self.slots, 0)], 0)
        arrays = {
            "slots": np.stack([self.slots, slot_fingerprint], axis=1),  # (T, 2)
            "records": np.stack([bits(self.backoff), self.dense_rows, self.offsets[:-1], self.offsets[1:]], axis=1),
            "entries": np.stack([self.tokens, bits(self.values)], axis=1),  # (E + width, 2)
            "dense": self.dense,
        }
        return {**{k: jnp.asarray(v) for k, v in arrays.items()},
                # Shapes the lookup needs as static numbers ride along as empty-valued arrays.
                "weight": jnp.float32(self.weight), "width": jnp.zeros(self.width, bool),
                "levels": jnp.zeros(self.order, bool)}

    def contexts_of(self, stream: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each position t >= 1 of a token stream: its order - 1 tokens before (newest last,
        zero-padded at the start) and how many of them there are -> (N - 1, order - 1), (N - 1,)."""
        k = self.order - 1
        stream = np.asarray(stream, np.int32)
        padded = np.concatenate([np.zeros(k, np.int32), stream])
        positions = np.arange(1, len(stream))
        history = padded[positions[:, None] + np.arange(k)] if k else np.zeros((len(positions), 0), np.int32)
        return history, np.minimum(positions, k).astype(np.int32)

    def log_probs(self, stream, chunk: int = 4096) -> np.ndarray:
        """ln p(stream[t] | the tokens before it) for t = 1 .. N - 1, as the sampler sees them."""
        history, known = self.contexts_of(stream)
        targets = np.asarray(stream, np.int32)[1:]
        out = np.empty(len(targets))
        table = self.on_device
        for start in range(0, len(targets), chunk):
            rows = slice(start, start + chunk)
            n = len(targets[rows])
            p = _target_probs(table, *(jnp.asarray(_pad(a[rows], chunk)) for a in (history, known, targets)))
            out[rows] = np.log(np.asarray(p)[:n])
        return out


def _pad(rows: np.ndarray, length: int) -> np.ndarray:
    """Rows zero-padded to `length`, so every chunk has one compiled shape."""
    return np.concatenate([rows, np.zeros((length - len(rows), *rows.shape[1:]), rows.dtype)])


@jax.jit
def _target_probs(table, history, known, targets):
    return jnp.take_along_axis(probs(table, history, known), targets[:, None], axis=1)[:, 0]


def probs(table: dict, history, known):
    """p(next token | context) for each row -> (B, V) float32, summing to 1 (within 1e-6).

    table: NGramTable.on_device; history (B, order - 1) int32, the newest token last; known (B,)
    int32: how many of the newest history tokens are real (the rest is padding)."""
    batch, k = history.shape
    width = table["width"].shape[0]
    mask = table["slots"].shape[0] - 1
    slot_hash, fingerprint = [], []
    for j in range(k + 1):
        s, f = _hashes(jnp, [history[:, k - 1 - i] for i in range(j)], j)
        slot_hash.append(jnp.broadcast_to(s, (batch,)))
        fingerprint.append(jnp.broadcast_to(f, (batch,)))
    slot_hash = jnp.stack(slot_hash, 1)  # (B, L)
    fingerprint = jax.lax.bitcast_convert_type(jnp.stack(fingerprint, 1), jnp.int32)
    probe = (slot_hash[..., None] + jnp.arange(PROBES, dtype=jnp.uint32)) & jnp.uint32(mask)  # (B, L, P)
    found = table["slots"][probe.astype(jnp.int32)]  # (B, L, P, 2): context index or -1, fingerprint
    match = (found[..., 0] >= 0) & (found[..., 1] == fingerprint[..., None])
    context = jnp.max(jnp.where(match, found[..., 0], -1), axis=-1)  # (B, L)
    usable = (context >= 0) & (jnp.arange(k + 1) <= known[:, None])
    record = table["records"][jnp.maximum(context, 0)]  # (B, L, 4): b(h), dense row, span
    # p_top = sum_j w_j a_j + w_u / V, unrolling the recursion: w_j is the product of the b(h) of
    # the usable levels above j (0 where j is unusable), w_u that of all of them. Written out level
    # by level, not as a cumprod, so that it fuses into one kernel: at batch 8 a sampler step's time
    # is the number of kernels it runs (docs/measurements.md).
    back = jnp.where(usable, jax.lax.bitcast_convert_type(record[..., 0], jnp.float32), 1.0)  # (B, L)
    above = [jnp.ones(batch)]
    for j in range(k, 0, -1):
        above.append(above[-1] * back[:, j])
    above = jnp.stack(above[::-1], axis=1)  # (B, L): the product over the levels above j
    w = jnp.where(usable, above, 0.0)
    p = jnp.sum(w[..., None] * table["dense"][record[..., 1]], axis=1)  # (B, V), one fusion
    p = p + (above[:, 0] * back[:, 0])[:, None] / p.shape[1]
    index = record[..., 2:3] + jnp.arange(width)  # (B, L, W)
    entries = table["entries"][index]  # (B, L, W, 2): token, a(h, token)
    values = jax.lax.bitcast_convert_type(entries[..., 1], jnp.float32)
    values = jnp.where(index < record[..., 3:], values, 0.0) * w[..., None]
    # Every b(h) is exactly the mass its a(h, .) leave, so p sums to 1 but for float rounding.
    return p.at[jnp.arange(batch)[:, None, None], entries[..., 0]].add(values)


def _place(slot_hash: np.ndarray) -> tuple[np.ndarray, int]:
    """An open-addressing table of the contexts (by index) at their slot hashes, linear probing,
    at least three times as many slots as contexts. A context with no free slot within PROBES of its own
    is left out (the lookup then uses its lower orders): returns the table and how many."""
    size = 1 << max(4, int(3 * len(slot_hash)).bit_length())
    slots = np.full(size, -1, np.int32)
    home = slot_hash & np.uint32(size - 1)
    waiting = np.arange(len(slot_hash))
    for k in range(PROBES):
        at = ((home[waiting] + np.uint32(k)) & np.uint32(size - 1)).astype(np.int64)
        free = slots[at] < 0
        taken, first = np.unique(at[free], return_index=True)  # one context per free slot per round
        placed = waiting[free][first]
        slots[taken] = placed
        waiting = np.setdiff1d(waiting, placed, assume_unique=True)
        if not len(waiting):
            break
    return slots, len(waiting)
