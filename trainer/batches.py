"""Turning a corpus into arrays on the device, and drawing training windows from them in-jit.

The whole encoded corpus is put on the device once as one int32 array; batches are slices of it
taken inside the jitted train step: feeding batches from the host each step was far slower.
"""

import jax
import jax.numpy as jnp
import numpy as np

from lstm.vocab import EOS, Vocab, normalize
from trainer.corpus import Record


def split_records(records: list[Record], val_fraction: float) -> tuple[list[Record], list[Record]]:
    """The last `val_fraction` of the characters (whole records, in time order) is validation."""
    total = sum(len(r.text) for r in records)
    seen = 0
    for i, r in enumerate(records):
        if seen >= total * (1.0 - val_fraction):
            return records[:i], records[i:]
        seen += len(r.text)
    return records[:-1], records[-1:]


def tokens_per_char(records: list[Record], vocab) -> float:
    """Tokens of `records` in `vocab` per symbol a character vocabulary would use for them (each
    character, and each record's <kind> and <eos>): a token stream's loss times this is its loss in
    nats per character. 1 for characters."""
    if isinstance(vocab, Vocab) or not records:
        return 1.0
    symbols = sum(len(normalize(r.text)) + 2 for r in records)
    return len(encode_records(records, vocab)) / symbols


def encode_records(records: list[Record], vocab: Vocab) -> np.ndarray:
    """One stream: <kind> text <eos> <kind> text <eos> ..."""
    ids = [i for r in records for i in vocab.encode_record(r.kind, r.text)]
    return np.asarray(ids, np.int32)


def post_starts(data: np.ndarray, seq: int) -> np.ndarray:
    """Offsets of every <eos> that can begin a full window: windows starting there read
    "<eos> <kind> text…" from a zero state, exactly as the sampler does."""
    starts = np.flatnonzero(data[: len(data) - seq - 1] == EOS)
    return starts if len(starts) else np.zeros(1, np.int64)


def random_windows(data, starts, key, batch: int, seq: int):
    """`batch` windows: x, y (B, T) with y shifted by one character.

    One row in 8 starts at a post boundary from `starts`, so a zero state means "a post begins",
    as it does when sampling (without them a model of 4-times-repeated "lmao" posts stopped after 3
    when sampled). The rest start anywhere, so the middles of long posts are learned: more rows at
    boundaries made the validation loss worse (docs/training.md).
    """
    key_any, key_post = jax.random.split(key)
    anywhere = jax.random.randint(key_any, (batch,), 0, data.shape[0] - seq - 1)
    at_post = starts[jax.random.randint(key_post, (batch,), 0, starts.shape[0])]
    begin = jnp.where(jnp.arange(batch) % 8 == 7, at_post, anywhere)
    idx = begin[:, None] + jnp.arange(seq + 1)  # (B, T+1)
    chunk = data[idx]
    return chunk[:, :-1], chunk[:, 1:]


def track_count(length: int, batch: int, seq: int) -> int:
    """Windows per track when the stream is cut into `batch` parallel tracks."""
    return (length // batch - 1) // seq


def track_windows(data, window, batch: int, seq: int):
    """Window number `window` of `batch` contiguous tracks, for stateful (carried-state) BPTT and
    for evaluation: row b reads its track in order, so the hidden state can carry across windows."""
    per_track = data.shape[0] // batch
    tracks = data[: batch * per_track].reshape(batch, per_track)
    chunk = jax.lax.dynamic_slice_in_dim(tracks, window * seq, seq + 1, axis=1)  # (B, T+1)
    return chunk[:, :-1], chunk[:, 1:]
