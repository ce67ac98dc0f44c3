"""Turning a corpus into arrays on the device, and drawing training windows from them in-jit.

The whole encoded corpus is put on the device once as one int32 array; batches are slices of it
taken inside the jitted train step: feeding batches from the host each step was far slower.
"""

from datetime import UTC, datetime

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


def recency_weights(records: list[Record], vocab, half_life_days: float, seq: int,
                    starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative weights for drawing windows toward newer posts: each token weighs as its post,
    2 ** -(days older than the newest post / half_life_days), a post without a time as the newest.
    Returns (over every window start in the stream, over `starts`), each ending at 1."""
    times = [_days(r.created_at) for r in records]
    newest = max((t for t in times if t is not None), default=0.0)
    per_post = np.array([0.5 ** ((newest - t) / half_life_days) if t is not None else 1.0 for t in times])
    lengths = np.array([len(vocab.encode_record(r.kind, r.text)) for r in records])
    per_token = np.repeat(per_post, lengths)
    anywhere = np.cumsum(per_token[: max(1, len(per_token) - seq - 1)], dtype=np.float64)
    at_post = np.cumsum(per_token[np.minimum(starts + 1, len(per_token) - 1)], dtype=np.float64)
    return (anywhere / anywhere[-1]).astype(np.float32), (at_post / at_post[-1]).astype(np.float32)


def _days(created_at: str | None) -> float | None:
    if not created_at:
        return None
    moment = datetime.fromisoformat(created_at)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() / 86400


def random_windows(data, starts, key, batch: int, seq: int, recency=None):
    """`batch` windows: x, y (B, T) with y shifted by one character.

    One row in 8 starts at a post boundary from `starts`, so a zero state means "a post begins",
    as it does when sampling (without them a model of 4-times-repeated "lmao" posts stopped after 3
    when sampled). The rest start anywhere, so the middles of long posts are learned: more rows at
    boundaries made the validation loss worse (docs/training.md). With `recency` (recency_weights'
    two cumulative weights), a start is drawn with its post's weight instead of uniformly.
    """
    key_any, key_post = jax.random.split(key)
    if recency is None:
        anywhere = jax.random.randint(key_any, (batch,), 0, data.shape[0] - seq - 1)
        at_post = starts[jax.random.randint(key_post, (batch,), 0, starts.shape[0])]
    else:
        by_any, by_post = recency
        anywhere = jnp.minimum(jnp.searchsorted(by_any, jax.random.uniform(key_any, (batch,))), by_any.shape[0] - 1)
        at_post = starts[jnp.minimum(jnp.searchsorted(by_post, jax.random.uniform(key_post, (batch,))),
                                     starts.shape[0] - 1)]
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
